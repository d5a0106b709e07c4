package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The HLS requests of the viewers scenario, as its results name them. Their
// latency is the time to the first byte of the answer.
const (
	RouteHLSMaster   = "hls_master"
	RouteHLSPlaylist = "hls_playlist"
	RouteHLSInit     = "hls_init"
	RouteHLSSegment  = "hls_segment"
)

// lateAfter is how far behind its schedule a viewer's timer may wake
// before the request counts as late: the generator, not the server, is
// then what holds the viewers back.
const lateAfter = 50 * time.Millisecond

// RunViewers runs the viewers scenario against cfg.BaseURL: it sets up
// the accounts (with a video id), checks that the stream plays, then runs
// the steps, each adding viewers, until a step misses the target, the
// last step has run, or ctx is cancelled (the results so far are still
// returned). Each viewer gets a grant (with a video id), fetches the
// master playlist, the rung's media playlist and its init section, then
// one segment per segment duration over its own connection, starting over
// at the end of the stream.
func RunViewers(ctx context.Context, cfg ViewersConfig) (*ViewersResults, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	vr := &viewersRun{cfg: cfg, stop: make(chan struct{})}
	vr.base, _ = url.Parse(cfg.BaseURL)
	vr.reqCtx, vr.reqCancel = context.WithCancel(ctx)
	defer vr.reqCancel()
	if cfg.VideoID != "" {
		if vr.api, err = newAPIRun(vr.reqCtx, cfg.BaseURL, cfg.Accounts, cfg.Timeout, cfg.Insecure, cfg.Log); err != nil {
			return nil, err
		}
		defer vr.api.close()
		if err := vr.signUp(); err != nil {
			return nil, err
		}
	}
	if err := vr.probe(); err != nil {
		return nil, err
	}
	return vr.run(ctx), nil
}

type viewersRun struct {
	cfg  ViewersConfig
	base *url.URL
	api  *run // reel's API; nil for plain files

	// reqCtx parents every request: cancelled with the caller's context,
	// or when requests in flight outlive the run's end by too much.
	reqCtx    context.Context
	reqCancel context.CancelFunc
	stop      chan struct{}
	stopOnce  sync.Once

	accounts []*account
	// The stream as the probe found it: what the results describe, and a
	// parsed media playlist viewers share when theirs is the same.
	rung     ViewersRung
	playlist []byte
	media    hlsMedia
	interval time.Duration // a typical pause between two segments

	cur     atomic.Pointer[viewerStep]
	playing atomic.Int64
	dials   atomic.Int64

	notesMu sync.Mutex
	notes   []string
}

// account is a viewer account that several viewers share.
type account struct {
	mu    sync.Mutex
	u     *vuser
	token string
}

// viewerStep collects one step's samples.
type viewerStep struct {
	viewers int
	start   time.Time
	rec     *Recorder // TTFB of the HLS requests, latency of the grants
	dl      *Recorder // the segments' time to their last byte
	late    atomic.Uint64
	maxLate atomic.Int64
	rss     atomic.Int64 // the servers' largest RSS seen, bytes; -1 unknown
}

func (vr *viewersRun) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	vr.notesMu.Lock()
	vr.notes = append(vr.notes, msg)
	vr.notesMu.Unlock()
	vr.cfg.Log.Warn(msg)
}

func (vr *viewersRun) stopped() bool {
	select {
	case <-vr.stop:
		return true
	default:
		return vr.reqCtx.Err() != nil
	}
}

// sleep waits d, or less if the run stops; it reports whether to go on.
func (vr *viewersRun) sleep(d time.Duration) bool {
	if d <= 0 {
		return !vr.stopped()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-vr.stop:
		return false
	case <-vr.reqCtx.Done():
		return false
	}
}

// signUp registers and logs in the accounts, a few at a time.
func (vr *viewersRun) signUp() error {
	vr.accounts = make([]*account, vr.cfg.Accounts)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2*runtime.GOMAXPROCS(0))
	for i := range vr.accounts {
		a := &account{u: vr.api.newUser(i)}
		vr.accounts[i] = a
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if vr.api.signUp(a.u) {
				a.token = a.u.token
			}
		})
	}
	wg.Wait()
	for i, a := range vr.accounts {
		if a.token == "" {
			return fmt.Errorf("viewer account %d could not register and log in (see the API's figures): %v", i, vr.api.apiRoutes())
		}
	}
	return nil
}

// grant asks for a playback grant as account a and returns its hls_url,
// logging in again once if the token has expired.
func (vr *viewersRun) grant(shard int, a *account) (*url.URL, Sample, error) {
	a.mu.Lock()
	tok := a.token
	a.mu.Unlock()
	path := "/api/v1/videos/" + url.PathEscape(vr.cfg.VideoID) + "/playback"
	for attempt := 0; ; attempt++ {
		start := time.Now()
		res, err := vr.api.send(request{shard: shard, route: RoutePlayback, method: "POST", path: path, token: tok, keep: true})
		s := Sample{Route: RoutePlayback, Start: start, Latency: time.Since(start), Status: res.status, Err: err, Bytes: int64(len(res.body))}
		if err != nil {
			return nil, s, err
		}
		if res.status == http.StatusUnauthorized && attempt == 0 {
			a.mu.Lock()
			if a.token == tok && vr.api.login(a.u) == nil {
				a.token = a.u.token
			}
			tok = a.token
			a.mu.Unlock()
			continue
		}
		if !res.ok() {
			return nil, s, fmt.Errorf("playback grant: status %d", res.status)
		}
		var pb struct {
			HLSURL *string `json:"hls_url"`
		}
		if json.Unmarshal(res.body, &pb) != nil || pb.HLSURL == nil || *pb.HLSURL == "" {
			s.Status, s.Err = 0, errors.New("playback grant without an hls_url: no rendition is playable yet")
			return nil, s, s.Err
		}
		u, err := vr.api.resolve(*pb.HLSURL)
		if err != nil {
			s.Status, s.Err = 0, err
			return nil, s, err
		}
		return u, s, nil
	}
}

// masterURL is where viewer n starts: a grant's hls_url, or the master's
// path on the target.
func (vr *viewersRun) masterURL(n int) (*url.URL, Sample, error) {
	if vr.api != nil {
		return vr.grant(n, vr.accounts[n%len(vr.accounts)])
	}
	ref, _ := url.Parse(vr.cfg.Master)
	return vr.base.ResolveReference(ref), Sample{}, nil
}

// resolve resolves ref against from and keeps it on the target.
func (vr *viewersRun) resolve(from *url.URL, ref string) (*url.URL, error) {
	r, err := url.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errForeignURL, err)
	}
	u := from.ResolveReference(r)
	if u.Scheme != vr.base.Scheme || u.Host != vr.base.Host {
		return nil, fmt.Errorf("%w: %s", errForeignURL, u.Redacted())
	}
	return u, nil
}

// tuned is what a viewer plays: the media playlist and where it is.
type tuned struct {
	playlist *url.URL
	media    *hlsMedia
}

// tuneIn gets viewer n to the point of playing: the grant, the master
// playlist, the rung's media playlist and its init section, each request
// recorded by record. It reports false when something failed (recorded
// as an error).
func (vr *viewersRun) tuneIn(n int, conn *hlsConn, record func(Sample)) (tuned, bool) {
	master, s, err := vr.masterURL(n)
	if s.Route != "" && !errors.Is(err, errStop) {
		record(s)
	}
	if err != nil {
		return tuned{}, false
	}
	f, ok := vr.fetch(n, conn, RouteHLSMaster, master, hlsPart{Length: -1}, true, record)
	if !ok {
		return tuned{}, false
	}
	vs, err := parseMaster(f.body)
	var pl *url.URL
	if err == nil {
		pl, err = vr.resolve(master, pickVariant(vs, vr.cfg.Short).URI)
	}
	if err != nil {
		record(Sample{Route: RouteHLSMaster, Start: time.Now(), Err: err})
		return tuned{}, false
	}
	if f, ok = vr.fetch(n, conn, RouteHLSPlaylist, pl, hlsPart{Length: -1}, true, record); !ok {
		return tuned{}, false
	}
	t := tuned{playlist: pl, media: &vr.media}
	if !bytes.Equal(f.body, vr.playlist) {
		m, err := parseMedia(f.body)
		if err != nil {
			record(Sample{Route: RouteHLSPlaylist, Start: time.Now(), Err: err})
			return tuned{}, false
		}
		t.media = &m
	}
	if init := t.media.Init; init.URI != "" {
		u, err := vr.resolve(pl, init.URI)
		if err != nil {
			record(Sample{Route: RouteHLSInit, Start: time.Now(), Err: err})
			return tuned{}, false
		}
		if _, ok := vr.fetch(n, conn, RouteHLSInit, u, init, false, record); !ok {
			return tuned{}, false
		}
	}
	return t, true
}

// fetch gets part of target over conn and records it under route: an
// error unless the answer is the whole file (200) or exactly the range
// asked for (206).
func (vr *viewersRun) fetch(n int, conn *hlsConn, route string, target *url.URL, part hlsPart, keep bool, record func(Sample)) (fetched, bool) {
	start := time.Now()
	f, err := conn.get(vr.reqCtx, target, part.rangeHeader(), keep)
	s := Sample{Route: route, Start: start, Latency: f.ttfb, Status: f.status, Bytes: f.bytes, Err: err}
	if err == nil {
		want := http.StatusOK
		if part.Length >= 0 {
			want = http.StatusPartialContent
		}
		switch {
		case f.status == want && part.Length >= 0 && f.bytes != part.Length:
			s.Status, s.Err = 0, fmt.Errorf("a %d-byte range answered with %d bytes", part.Length, f.bytes)
		case f.status != want && f.status >= 200 && f.status < 300:
			s.Status, s.Err = 0, fmt.Errorf("answer %d where %d was due", f.status, want)
		}
	}
	if s.Err != nil && vr.reqCtx.Err() != nil {
		s.Canceled = true
	}
	record(s)
	if route == RouteHLSSegment && s.OK() {
		if st := vr.cur.Load(); st != nil {
			st.dl.Record(n, Sample{Route: route, Start: start, Latency: f.total, Status: f.status, Bytes: f.bytes})
		}
	}
	return f, s.OK()
}

// viewer is viewer n's life from at: tune in, then play until the run
// stops, tuning in again after a failure.
func (vr *viewersRun) viewer(n int, at time.Time) {
	if !vr.sleep(time.Until(at)) {
		return
	}
	conn := newHLSConn(vr.base, vr.cfg.Timeout, vr.cfg.Insecure)
	conn.dialed = &vr.dials
	defer conn.close()
	record := func(s Sample) {
		if st := vr.cur.Load(); st != nil {
			st.rec.Record(n, s)
		}
	}
	for !vr.stopped() {
		if t, ok := vr.tuneIn(n, conn, record); ok {
			vr.playing.Add(1)
			vr.play(n, conn, t, record)
			vr.playing.Add(-1)
		}
		// A player that could not start waits a while and tries again.
		if !vr.sleep(vr.interval) {
			return
		}
	}
}

// play fetches one segment per segment duration, from the first, starting
// over after the last, until the run stops or a playlist's URI leaves the
// target.
func (vr *viewersRun) play(n int, conn *hlsConn, t tuned, record func(Sample)) {
	segs := t.media.Segments
	next := time.Now()
	for i := 0; ; i = (i + 1) % len(segs) {
		if wait := time.Until(next); wait > 0 {
			if !vr.sleep(wait) {
				return
			}
			// How late the timer woke: the generator's own delay.
			if late := time.Since(next); late > lateAfter {
				if st := vr.cur.Load(); st != nil {
					st.late.Add(1)
					for m := st.maxLate.Load(); int64(late) > m && !st.maxLate.CompareAndSwap(m, int64(late)); m = st.maxLate.Load() {
					}
				}
			}
		} else if vr.stopped() {
			return
		}
		seg := segs[i]
		u, err := vr.resolve(t.playlist, seg.URI)
		if err != nil {
			record(Sample{Route: RouteHLSSegment, Start: time.Now(), Err: err})
			return
		}
		vr.fetch(n, conn, RouteHLSSegment, u, seg, false, record)
		next = next.Add(vr.pace(seg))
	}
}

// pace is the time between a segment's request and the next one's.
func (vr *viewersRun) pace(seg hlsPart) time.Duration {
	if vr.cfg.Interval > 0 {
		return vr.cfg.Interval
	}
	// A segment without a duration is fetched at most ten times a second.
	return max(time.Duration(seg.Duration*float64(time.Second)), 100*time.Millisecond)
}

// probe plays the stream's first steps once, before any viewer: it fails
// the run early and clearly when there is nothing to play, and tells the
// results what the viewers play.
func (vr *viewersRun) probe() error {
	conn := newHLSConn(vr.base, vr.cfg.Timeout, vr.cfg.Insecure)
	defer conn.close()
	var failure error
	record := func(s Sample) {
		if !s.OK() && failure == nil {
			failure = s.Err
			if failure == nil {
				failure = fmt.Errorf("status %d", s.Status)
			}
			failure = fmt.Errorf("%s: %w", s.Route, failure)
		}
	}
	master, s, err := vr.masterURL(0)
	if err != nil {
		return fmt.Errorf("the stream does not play: %s: %w", s.Route, err)
	}
	f, ok := vr.fetch(0, conn, RouteHLSMaster, master, hlsPart{Length: -1}, true, record)
	if !ok {
		return fmt.Errorf("the stream does not play: %w", failure)
	}
	vs, err := parseMaster(f.body)
	if err != nil {
		return fmt.Errorf("the stream does not play: %w", err)
	}
	v := pickVariant(vs, vr.cfg.Short)
	if v.short() != vr.cfg.Short {
		vr.note("the master playlist has no rung of %dp: the viewers play %dx%d", vr.cfg.Short, v.Width, v.Height)
	}
	pl, err := vr.resolve(master, v.URI)
	if err != nil {
		return err
	}
	if f, ok = vr.fetch(0, conn, RouteHLSPlaylist, pl, hlsPart{Length: -1}, true, record); !ok {
		return fmt.Errorf("the stream does not play: %w", failure)
	}
	if vr.media, err = parseMedia(f.body); err != nil {
		return fmt.Errorf("the stream does not play: %w", err)
	}
	vr.playlist = f.body
	vr.rung = ViewersRung{Playlist: v.URI, Width: v.Width, Height: v.Height, Bandwidth: v.Bandwidth, Segments: len(vr.media.Segments)}
	var dur float64
	var size int64
	for _, s := range vr.media.Segments {
		dur += s.Duration
		size += max(s.Length, 0)
	}
	vr.rung.SegmentS = dur / float64(len(vr.media.Segments))
	vr.rung.Bytes = size / int64(len(vr.media.Segments))
	vr.interval = vr.pace(hlsPart{Duration: vr.rung.SegmentS})
	return nil
}

// run runs the steps and returns the results.
func (vr *viewersRun) run(ctx context.Context) *ViewersResults {
	cfg := vr.cfg
	res := &ViewersResults{
		Tool: "reel loadtest", Target: cfg.BaseURL, VideoID: cfg.VideoID, Master: cfg.Master, StartedAt: time.Now().UTC(),
		Rung: vr.rung, IntervalS: cfg.Interval.Seconds(), TargetP99MS: ms(cfg.TargetP99), StepS: cfg.StepDuration.Seconds(),
		ServerPIDs: cfg.ServerPIDs,
		Client:     ClientInfo{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH},
	}
	res.Mode = "files"
	if vr.api != nil {
		res.Mode, res.Accounts = "reel", len(vr.accounts)
	}
	if limit, ok := openFileLimit(); ok && uint64(cfg.Max)+64 > limit {
		vr.note("%d viewers need as many open files, and the limit is %d (ulimit -n): expect too_many_open_files errors", cfg.Max, limit)
	}
	go func() {
		select {
		case <-ctx.Done():
			vr.halt()
		case <-vr.stop:
		}
	}()
	go vr.sampleRSS()

	start := time.Now()
	var wg sync.WaitGroup
	var steps []*viewerStep
	var allMarks []stepMarks
	res.StopReason = "max"
	for k, have := 0, 0; k < cfg.steps(); k++ {
		n := cfg.viewersAt(k)
		st := &viewerStep{viewers: n, start: time.Now()}
		st.rec = NewRecorder(st.start, time.Second, 4*runtime.GOMAXPROCS(0))
		st.dl = NewRecorder(st.start, time.Second, 4*runtime.GOMAXPROCS(0))
		st.rss.Store(-1)
		m := stepMarks{from: vr.counters()}
		vr.cur.Store(st)
		steps = append(steps, st)
		// The step's new viewers arrive over one segment's time (at most
		// half the step), so that they do not all ask at once.
		spread := min(vr.interval, cfg.StepDuration/2)
		for i := have; i < n; i++ {
			at := st.start.Add(spread * time.Duration(i-have) / time.Duration(n-have))
			wg.Go(func() { vr.viewer(i, at) })
		}
		have = n
		ok := vr.sleep(cfg.StepDuration)
		m.to = vr.counters()
		m.playing = vr.playing.Load()
		allMarks = append(allMarks, m)
		if !ok {
			res.StopReason = "interrupted"
			break
		}
		r := vr.stepResult(st, m)
		cfg.Log.Info("viewers step", "viewers", n, "playing", r.Playing, "segments", r.Segments, "errors", r.Errors,
			"ttfb_p50_ms", r.TTFB.P50, "ttfb_p99_ms", r.TTFB.P99, "generator_cpu", r.GeneratorCPU, "server_cpu", r.ServerCPU,
			"server_rss_mib", r.ServerRSSMiB, "pass", r.Pass)
		if !r.Pass {
			res.StopReason = "failed"
			break
		}
	}
	vr.halt()
	// Requests in flight finish (they count in their step); past their
	// timeout and a grace they are cancelled.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(cfg.Timeout + 5*time.Second):
		vr.note("requests still in flight %s after the end were cancelled", cfg.Timeout+5*time.Second)
		vr.reqCancel()
		<-done
	}
	for i, st := range steps {
		s := vr.stepResult(st, allMarks[i])
		s.StartS = st.start.Sub(start).Seconds()
		res.Steps = append(res.Steps, s)
	}
	for _, s := range res.Steps {
		if !s.Pass {
			break
		}
		res.Best = s.Viewers
	}
	if vr.api != nil {
		res.API = vr.api.apiRoutes()
	}
	if len(cfg.ServerPIDs) == 0 {
		vr.note("no server process given (-server-pid): the server's CPU and memory are not reported")
	}
	vr.notesMu.Lock()
	res.Notes = append([]string(nil), vr.notes...)
	vr.notesMu.Unlock()
	return res
}

func (vr *viewersRun) halt() { vr.stopOnce.Do(func() { close(vr.stop) }) }

// sampleRSS keeps each step's largest server RSS, once a second.
func (vr *viewersRun) sampleRSS() {
	if len(vr.cfg.ServerPIDs) == 0 {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if st := vr.cur.Load(); st != nil {
			if rss, ok := sumRSS(vr.cfg.ServerPIDs); ok && rss > st.rss.Load() {
				st.rss.Store(rss)
			}
		}
		select {
		case <-t.C:
		case <-vr.stop:
			return
		}
	}
}

func sumRSS(pids []int) (int64, bool) {
	var sum int64
	for _, pid := range pids {
		n, ok := procRSS(pid)
		if !ok {
			return 0, false
		}
		sum += n
	}
	return sum, true
}

// counters are the CPU counters (and connections opened) at an instant.
type counters struct {
	at          time.Time
	self        time.Duration
	server      time.Duration
	serverOK    bool
	busy, total time.Duration
	machineOK   bool
	dials       int64
}

func (vr *viewersRun) counters() counters {
	pids := vr.cfg.ServerPIDs
	m := counters{at: time.Now(), self: selfCPU(), serverOK: len(pids) > 0, dials: vr.dials.Load()}
	for _, pid := range pids {
		c, ok := procCPU(pid)
		m.server += c
		m.serverOK = m.serverOK && ok
	}
	m.busy, m.total, m.machineOK = machineCPU()
	return m
}

// stepMarks are the counters at a step's start and end.
type stepMarks struct {
	from, to counters
	playing  int64
}

// stepResult turns a step's samples and marks into its figures.
func (vr *viewersRun) stepResult(st *viewerStep, m stepMarks) ViewersStep {
	wall := m.to.at.Sub(m.from.at)
	s := ViewersStep{Viewers: st.viewers, Playing: m.playing, DurationS: wall.Seconds(), GeneratorCPU: -1, ServerCPU: -1, MachineCPU: -1, ServerRSSMiB: -1}
	stats := st.rec.Snapshot()
	for _, name := range []string{RoutePlayback, RouteHLSMaster, RouteHLSPlaylist, RouteHLSInit, RouteHLSSegment} {
		rs, ok := stats[name]
		if !ok {
			continue
		}
		r := rs.Result(name, st.rec.Width())
		s.Routes = append(s.Routes, r)
		s.Requests += r.Requests
		s.Errors += r.Errors
		if name == RouteHLSSegment {
			s.Segments, s.TTFB = r.Requests, r.Latency
			s.MiBps = float64(r.Bytes) / (1 << 20) / max(wall.Seconds(), 1e-3)
		}
	}
	if rs, ok := st.dl.Snapshot()[RouteHLSSegment]; ok {
		s.Download = rs.Result(RouteHLSSegment, st.dl.Width()).Latency
	}
	s.Late, s.MaxLateMS = st.late.Load(), ms(time.Duration(st.maxLate.Load()))
	s.Dials = uint64(max(m.to.dials-m.from.dials, 0))
	if secs := wall.Seconds(); secs > 0 {
		if self := m.to.self - m.from.self; self > 0 {
			s.GeneratorCPU = round2(self.Seconds() / secs)
		}
		if m.from.serverOK && m.to.serverOK {
			s.ServerCPU = round2((m.to.server - m.from.server).Seconds() / secs)
		}
		if m.from.machineOK && m.to.machineOK && m.to.total > m.from.total {
			frac := float64(m.to.busy-m.from.busy) / float64(m.to.total-m.from.total)
			s.MachineCPU = round2(frac * float64(runtime.NumCPU()))
		}
	}
	if rss := st.rss.Load(); rss >= 0 {
		s.ServerRSSMiB = math.Round(float64(rss)/(1<<20)*10) / 10
	}
	s.Pass = s.Errors == 0 && s.Segments > 0 && s.TTFB.P99 < ms(vr.cfg.TargetP99)
	return s
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }
