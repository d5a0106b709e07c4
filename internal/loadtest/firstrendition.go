package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// FirstRenditionConfig describes a first-rendition run: uploads of a clip,
// one at a time, each timed from the upload's answer to the first
// rendition listed in its master playlist, idle or behind a queue of
// other uploads.
type FirstRenditionConfig struct {
	// BaseURL is the only address the run sends requests to.
	BaseURL string
	// Video is the measured clip (an MP4), uploaded Uploads times
	// (default 5).
	Video   []byte
	Uploads int
	// Queue, when set, is uploaded Queued times by another account before
	// the measured uploads, to keep the transcoders busy: a clip that
	// needs transcoding (not H.264 or AAC), so that every one of its
	// rungs is an encode.
	Queue  []byte
	Queued int
	// Poll is the time between two looks at a measured video (default
	// 100 ms): the measurement's resolution.
	Poll time.Duration
	// Wait bounds the wait for one video's first rendition (default 5 min).
	Wait time.Duration
	// AdminEmail and AdminPassword, when set, let the run read the job
	// queue: without a queue, each measured upload waits until no poster,
	// transcode or storyboard job is running or waiting, so that "idle"
	// means idle; each sample says how many were when it was answered.
	AdminEmail, AdminPassword string
	// Timeout bounds one request (default 2 min: an upload of a large
	// clip on a busy machine).
	Timeout  time.Duration
	Insecure bool
	// Log receives progress and notes; nil discards them.
	Log *slog.Logger
}

func (c FirstRenditionConfig) withDefaults() (FirstRenditionConfig, error) {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	base, err := ValidateURL(c.BaseURL)
	if err != nil {
		return c, err
	}
	c.BaseURL = base
	if len(c.Video) == 0 {
		return c, errors.New("no clip to upload")
	}
	if c.Uploads == 0 {
		c.Uploads = 5
	}
	if c.Uploads < 1 || c.Uploads > 1000 {
		return c, fmt.Errorf("uploads: %d: want 1 to 1000", c.Uploads)
	}
	if c.Queued < 0 || c.Queued > 1000 || (c.Queued > 0 && len(c.Queue) == 0) {
		return c, fmt.Errorf("queued: %d: want 0 to 1000, with a clip to queue", c.Queued)
	}
	if c.Poll == 0 {
		c.Poll = 100 * time.Millisecond
	}
	if c.Poll < 10*time.Millisecond || c.Poll > time.Minute {
		return c, fmt.Errorf("poll: %s: want 10ms to 1m", c.Poll)
	}
	if c.Wait == 0 {
		c.Wait = 5 * time.Minute
	}
	if c.Wait < 0 || c.Wait > MaxDuration {
		return c, fmt.Errorf("wait: %s: want up to %s", c.Wait, MaxDuration)
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Minute
	}
	if c.Timeout < 0 || c.Timeout > MaxTimeout {
		return c, fmt.Errorf("timeout: %s: want up to %s", c.Timeout, MaxTimeout)
	}
	if (c.AdminEmail == "") != (c.AdminPassword == "") {
		return c, errors.New("admin email and admin password go together")
	}
	return c, nil
}

// FirstRenditionResults is what a first-rendition run measured, as
// written to first-rendition.json.
type FirstRenditionResults struct {
	Tool       string    `json:"tool"`
	Target     string    `json:"target"`
	StartedAt  time.Time `json:"started_at"`
	Uploads    int       `json:"uploads"`
	Queued     int       `json:"queued"`
	VideoBytes int       `json:"video_bytes"`
	QueueBytes int       `json:"queue_bytes,omitempty"`
	// Samples are the measured uploads in order.
	Samples []FirstRendition `json:"samples"`
	// Of the samples without error: from the upload's answer to the
	// first rendition in the master playlist, seconds (nearest rank).
	P50S   float64 `json:"p50_s"`
	P95S   float64 `json:"p95_s"`
	MaxS   float64 `json:"max_s"`
	Errors int     `json:"errors"`
	// API is every request the run made.
	API    []RouteResult `json:"api"`
	Notes  []string      `json:"notes,omitempty"`
	Client ClientInfo    `json:"client"`
}

// FirstRendition is one measured upload.
type FirstRendition struct {
	VideoID string `json:"video_id,omitempty"`
	// UploadS is the upload request, from its first byte sent to its
	// answer; FirstS from that answer to the first master playlist that
	// lists a rendition.
	UploadS float64 `json:"upload_s"`
	FirstS  float64 `json:"first_s,omitempty"`
	// Rendition is the first rendition listed ("640x360").
	Rendition string `json:"rendition,omitempty"`
	// JobsAhead is how many poster, transcode and storyboard jobs were
	// running or waiting when the upload was sent (-1: unknown, no admin
	// credentials).
	JobsAhead int    `json:"jobs_ahead"`
	Error     string `json:"error,omitempty"`
}

// FirstRenditionFile is the file name WriteFirstRendition writes.
const FirstRenditionFile = "first-rendition.json"

// RunFirstRendition runs the first-rendition scenario. Every video it
// uploads goes to the trash once measured (which stops its jobs), the
// queue's at the end.
func RunFirstRendition(ctx context.Context, cfg FirstRenditionConfig) (*FirstRenditionResults, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	api, err := newAPIRun(ctx, cfg.BaseURL, 4, cfg.Timeout, cfg.Insecure, cfg.Log)
	if err != nil {
		return nil, err
	}
	defer api.close()
	fr := &firstRun{cfg: cfg, api: api}
	res := &FirstRenditionResults{
		Tool: "reel loadtest", Target: cfg.BaseURL, StartedAt: time.Now().UTC(), Uploads: cfg.Uploads, Queued: cfg.Queued,
		VideoBytes: len(cfg.Video), QueueBytes: len(cfg.Queue),
		Client: ClientInfo{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH},
	}
	defer func() { res.API = api.apiRoutes() }()

	me := api.newUser(0)
	if !api.signUp(me) {
		return nil, fmt.Errorf("the measuring account could not register and log in: %v", statusesOf(api.apiRoutes()))
	}
	if cfg.AdminEmail != "" {
		if fr.admin, err = api.loginAs(-1, RouteAdminLogin, cfg.AdminEmail, cfg.AdminPassword); err != nil {
			return nil, fmt.Errorf("admin login: %w", err)
		}
	} else {
		api.note("no admin credentials: the run cannot see the job queue (jobs_ahead is -1)")
	}

	var queued []string
	other := api.newUser(1)
	if cfg.Queued > 0 {
		if !api.signUp(other) {
			return nil, fmt.Errorf("the queueing account could not register and log in: %v", statusesOf(api.apiRoutes()))
		}
		for i := range cfg.Queued {
			id, err := fr.upload(other, fmt.Sprintf("queued %d", i+1), cfg.Queue)
			if err != nil {
				api.note("queued upload %d: %v", i+1, err)
				continue
			}
			queued = append(queued, id)
		}
		cfg.Log.Info("queued uploads answered", "videos", len(queued))
	}

	for i := range cfg.Uploads {
		if ctx.Err() != nil {
			api.note("interrupted after %d of %d uploads", i, cfg.Uploads)
			break
		}
		if cfg.Queued == 0 && fr.admin != "" {
			if n := fr.waitIdle(ctx, 5*time.Minute); n > 0 {
				api.note("upload %d: %d jobs still running or waiting after 5 min: not idle", i+1, n)
			}
		}
		s := fr.measure(ctx, me, i)
		res.Samples = append(res.Samples, s)
		cfg.Log.Info("first rendition", "upload", i+1, "video", s.VideoID, "upload_s", s.UploadS, "first_s", s.FirstS,
			"rendition", s.Rendition, "jobs_ahead", s.JobsAhead, "error", s.Error)
	}
	for _, id := range queued {
		fr.trash(other, id)
	}

	var h Histogram
	for _, s := range res.Samples {
		if s.Error != "" {
			res.Errors++
			continue
		}
		h.Record(time.Duration(s.FirstS * float64(time.Second)))
	}
	q := h.Quantiles(50, 95)
	res.P50S, res.P95S, res.MaxS = q[0].Seconds(), q[1].Seconds(), h.Max().Seconds()
	api.notesMu.Lock()
	res.Notes = append([]string(nil), api.notes...)
	api.notesMu.Unlock()
	return res, nil
}

type firstRun struct {
	cfg   FirstRenditionConfig
	api   *run
	admin string // the admin's access token, "" without
}

// upload sends clip as u and returns the new video's id.
func (fr *firstRun) upload(u *vuser, title string, clip []byte) (string, error) {
	res, err := fr.api.send(request{shard: u.n, route: RouteUpload, method: "POST", path: "/api/v1/videos", token: u.token,
		body: multipartBody(fmt.Sprintf("first rendition %s: %s", fr.api.runID, title), clip), keep: true})
	if err != nil {
		return "", err
	}
	if !res.ok() {
		return "", fmt.Errorf("upload: status %d: %s", res.status, strings.TrimSpace(string(res.body[:min(len(res.body), 300)])))
	}
	v := videoFrom(res.body)
	if v.ID == "" {
		return "", errors.New("upload: no video id in the answer")
	}
	return v.ID, nil
}

// measure uploads the clip as u and times its first rendition.
func (fr *firstRun) measure(ctx context.Context, u *vuser, i int) FirstRendition {
	s := FirstRendition{JobsAhead: -1}
	if fr.admin != "" {
		s.JobsAhead = fr.jobsBusy()
	}
	start := time.Now()
	id, err := fr.upload(u, fmt.Sprintf("measured %d", i+1), fr.cfg.Video)
	answered := time.Now()
	s.VideoID, s.UploadS = id, answered.Sub(start).Seconds()
	if err != nil {
		s.Error = err.Error()
		return s
	}
	defer fr.trash(u, id)
	deadline := answered.Add(fr.cfg.Wait)
	for {
		rendition, err := fr.firstRendition(u, id)
		if err != nil {
			s.Error = err.Error()
			return s
		}
		if rendition != "" {
			s.FirstS, s.Rendition = time.Since(answered).Seconds(), rendition
			return s
		}
		if time.Now().After(deadline) {
			s.Error = fmt.Sprintf("no rendition after %s", fr.cfg.Wait)
			return s
		}
		select {
		case <-time.After(fr.cfg.Poll):
		case <-ctx.Done():
			s.Error = "interrupted"
			return s
		}
	}
}

// firstRendition looks once whether video id has a rendition in its master
// playlist, and returns it ("WxH"), or "" when not yet. The video's own
// answer says when a rendition is done (a read, which a poll may repeat);
// the grant and the master playlist then say whether a player sees it.
func (fr *firstRun) firstRendition(u *vuser, id string) (string, error) {
	res, err := fr.api.send(request{shard: u.n, route: RouteVideo, method: "GET", path: "/api/v1/videos/" + url.PathEscape(id), token: u.token, keep: true})
	if err != nil {
		return "", err
	}
	if !res.ok() {
		return "", fmt.Errorf("video: status %d", res.status)
	}
	var v struct {
		Video struct {
			Streaming struct {
				State string `json:"state"`
				Done  []int  `json:"renditions_done"`
			} `json:"streaming"`
		} `json:"video"`
	}
	if err := json.Unmarshal(res.body, &v); err != nil {
		return "", fmt.Errorf("video: %w", err)
	}
	switch st := v.Video.Streaming; {
	case st.State == "failed":
		return "", errors.New("streaming failed")
	case len(st.Done) == 0:
		return "", nil
	}
	res, err = fr.api.send(request{shard: u.n, route: RoutePlayback, method: "POST", path: "/api/v1/videos/" + url.PathEscape(id) + "/playback",
		token: u.token, keep: true})
	if err != nil {
		return "", err
	}
	if !res.ok() {
		return "", fmt.Errorf("playback: status %d", res.status)
	}
	var pb struct {
		HLSURL *string `json:"hls_url"`
	}
	if json.Unmarshal(res.body, &pb) != nil || pb.HLSURL == nil {
		return "", nil
	}
	master, err := fr.api.resolve(*pb.HLSURL)
	if err != nil {
		return "", err
	}
	res, err = fr.api.send(request{shard: u.n, route: RouteHLSMaster, method: "GET", url: master, keep: true})
	if err != nil {
		return "", err
	}
	if !res.ok() {
		return "", fmt.Errorf("master playlist: status %d", res.status)
	}
	vs, err := parseMaster(res.body)
	if err != nil {
		return "", nil // not listing a variant yet
	}
	return fmt.Sprintf("%dx%d", vs[0].Width, vs[0].Height), nil
}

// trash moves a video to the trash, which cancels its jobs.
func (fr *firstRun) trash(u *vuser, id string) {
	res, err := fr.api.send(request{shard: u.n, route: RouteDelete, method: "DELETE", path: "/api/v1/videos/" + url.PathEscape(id), token: u.token})
	if err == nil && !res.ok() {
		err = fmt.Errorf("status %d", res.status)
	}
	if err != nil && !errors.Is(err, errStop) {
		fr.api.note("trashing video %s: %v (its jobs may go on)", id, err)
	}
}

// mediaJobs are the kinds of job that run ffmpeg.
var mediaJobs = []string{"poster", "transcode", "storyboard"}

// jobsBusy counts the media jobs running or waiting to run, -1 when the
// queue cannot be read.
func (fr *firstRun) jobsBusy() int {
	n := 0
	for _, state := range []string{"running", "available"} {
		res, err := fr.api.send(request{shard: -1, route: RouteJobs, method: "GET", path: "/api/v1/jobs",
			query: url.Values{"limit": {"100"}, "state": {state}}, token: fr.admin, keep: true})
		if err != nil || !res.ok() {
			return -1
		}
		var p struct {
			Items []struct {
				Kind string `json:"kind"`
			} `json:"items"`
		}
		if json.Unmarshal(res.body, &p) != nil {
			return -1
		}
		for _, j := range p.Items {
			if slices.Contains(mediaJobs, j.Kind) {
				n++
			}
		}
	}
	return n
}

// waitIdle waits until no media job runs or waits, at most max, and
// returns how many were left.
func (fr *firstRun) waitIdle(ctx context.Context, max time.Duration) int {
	deadline := time.Now().Add(max)
	for {
		n := fr.jobsBusy()
		if n <= 0 || time.Now().After(deadline) {
			return n
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return n
		}
	}
}

// statusesOf sums up routes' answers for an error message.
func statusesOf(routes []RouteResult) string {
	var parts []string
	for _, r := range routes {
		parts = append(parts, r.Name+": "+statusSummary(r))
	}
	return strings.Join(parts, "; ")
}

// WriteFirstRendition writes res as first-rendition.json into dir.
func WriteFirstRendition(dir string, res *FirstRenditionResults) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results dir: %w", err)
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, FirstRenditionFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// WriteFirstRenditionSummary prints res as plain text to w.
func WriteFirstRenditionSummary(w io.Writer, res *FirstRenditionResults) error {
	fmt.Fprintf(w, "%s first rendition → %s: %d uploads of %.1f MiB, %d queued before them\n",
		res.Tool, res.Target, res.Uploads, float64(res.VideoBytes)/(1<<20), res.Queued)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "upload\tupload s\tfirst rendition s\trendition\tjobs ahead\terror\t")
	for i, s := range res.Samples {
		fmt.Fprintf(tw, "%d\t%.2f\t%.2f\t%s\t%d\t%s\t\n", i+1, s.UploadS, s.FirstS, s.Rendition, s.JobsAhead, s.Error)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "first rendition after the upload's answer: p50 %.2f s, p95 %.2f s, max %.2f s; %d errors\n", res.P50S, res.P95S, res.MaxS, res.Errors)
	for _, n := range res.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}
