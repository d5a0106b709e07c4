package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/videos"
)

// The crash harness's checks after a restart (crash_test.go).

// recoveryWithin bounds the recovery window: a lease (2 s) and a sweep
// (1 s), the outbox relay's next delivery, and for a poster job the kill
// caught between charging its poster and recording it, River's take-over
// of the job (a new leader, then its rescuer's pass: up to about 45 s);
// generous, for a loaded machine.
const recoveryWithin = 90 * time.Second

func sortVideos(vs []*crashVideo) {
	sort.Slice(vs, func(i, j int) bool { return vs[i].id < vs[j].id })
}

// list reads every page of a cursor list into items.
func list[T any](cl *client, path string) ([]T, string) {
	var out []T
	cursor := ""
	for {
		p := path
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		a := cl.get(p)
		if a.status != 200 {
			return nil, fmt.Sprintf("%s: %d %s", p, a.status, a.raw)
		}
		var page struct {
			Items      []T     `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		if err := json.Unmarshal(a.raw, &page); err != nil {
			return nil, fmt.Sprintf("%s: %v", p, err)
		}
		out = append(out, page.Items...)
		if page.NextCursor == nil || *page.NextCursor == "" {
			return out, ""
		}
		cursor = *page.NextCursor
	}
}

type videoDoc struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	SizeBytes int64  `json:"size_bytes"`
}

// resync reads each user's videos and trash into the model: the state of
// every video after the kill, videos whose upload was not answered, and
// which resumable uploads are still open.
func (c *crash) resync() string {
	for _, u := range c.users {
		live, msg := list[videoDoc](u.cl, "/api/v1/videos/mine?limit=100")
		if msg != "" {
			return msg
		}
		trash, msg := list[videoDoc](u.cl, "/api/v1/trash?limit=100")
		if msg != "" {
			return msg
		}
		seen := map[string]string{}
		c.mu.Lock()
		for state, docs := range map[string][]videoDoc{stLive: live, stTrash: trash} {
			for _, d := range docs {
				seen[d.ID] = state
				v := c.videos[d.ID]
				if v == nil {
					v = &crashVideo{id: d.ID, owner: u.id, size: d.SizeBytes, poster: -1}
					c.videos[d.ID] = v
				}
				v.state, v.status, v.busy = state, d.Status, false
				if d.Status == "ready" {
					v.ready = true
				}
			}
		}
		for _, v := range c.videos {
			if v.owner == u.id && seen[v.id] == "" {
				v.state, v.busy = stPurged, false
			}
		}
		open := slices.Clone(u.open)
		c.mu.Unlock()
		// An open upload's offset is the server's: a piece in flight at
		// the kill may have been written in part. One whose every byte
		// arrived but whose finalisation died with the process is
		// finished by the HEAD (or by the restarted process already),
		// which names its video.
		var still []*crashTus
		for _, up := range open {
			a := u.cl.do("HEAD", up.loc, nil, "Tus-Resumable", "1.0.0")
			switch {
			case a.status == 200 && a.header.Get(videos.VideoIDHeader) != "":
				c.t.Logf("tus upload %s: finished after the restart (every byte had arrived)", up.loc)
				c.uploaded(u, a.header.Get(videos.VideoIDHeader), int64(len(up.content)))
			case a.status == 200:
				off, _ := strconv.ParseInt(a.header.Get("Upload-Offset"), 10, 64)
				up.offset = off
				still = append(still, up)
				if off == int64(len(up.content)) {
					return fmt.Sprintf("HEAD %s: every byte arrived, yet the upload is not finished", up.loc)
				}
			case a.status == 404 || a.status == 410:
			default:
				return fmt.Sprintf("HEAD %s: %d %s", up.loc, a.status, a.raw)
			}
		}
		c.mu.Lock()
		u.open = still
		c.mu.Unlock()
	}
	return ""
}

// wantRecovered waits until every invariant holds, and fails with the
// last difference if they do not within the recovery window.
func (c *crash) wantRecovered(round int, drained bool) {
	c.t.Helper()
	var last string
	start := time.Now()
	deadline := start.Add(recoveryWithin)
	for {
		last = c.recovered(drained)
		if last == "" {
			c.t.Logf("round %d: recovered in %s; %s", round, time.Since(start).Round(time.Millisecond), c.summary())
			return
		}
		if os.Getenv("CRASHDEBUG") != "" {
			c.t.Logf("%s: %.300s", time.Since(start).Round(time.Millisecond), last)
		}
		if time.Now().After(deadline) {
			c.t.Errorf("round %d: not recovered after %s: %s\nreel check: %s", round, recoveryWithin, last, c.check())
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// recovered checks the invariants once; "" when they all hold.
func (c *crash) recovered(drained bool) string {
	if msg := c.resync(); msg != "" {
		return msg
	}
	for _, u := range c.users {
		if msg := c.figures(u, drained); msg != "" {
			return msg
		}
	}
	if msg := c.files(drained); msg != "" {
		return msg
	}
	if msg := c.events(); msg != "" {
		return msg
	}
	return c.check()
}

// figures compares a user's storage and daily upload figures with their
// videos and open uploads.
func (c *crash) figures(u *crashUser, drained bool) string {
	c.mu.Lock()
	var mine []*crashVideo
	for _, v := range c.videos {
		if v.owner == u.id {
			mine = append(mine, v)
		}
	}
	var held, maybe int64
	for _, up := range u.open {
		held += int64(len(up.content))
	}
	for _, n := range u.maybe {
		maybe += n
	}
	c.mu.Unlock()
	sortVideos(mine)
	var stored, uploaded int64
	for _, v := range mine {
		if v.ready {
			uploaded += v.size
		}
		if v.state != stLive || v.status == "failed" {
			continue
		}
		if v.status != "ready" {
			return fmt.Sprintf("%s's video %s is %s after the restart", u.name, v.id, v.status)
		}
		if v.poster < 0 {
			v.poster = c.posterBytes(u, v.id)
		}
		if v.poster < 0 && drained {
			return fmt.Sprintf("%s's video %s has no poster yet", u.name, v.id)
		}
		stored += v.size + max(v.poster, 0)
	}
	a := u.cl.get("/api/v1/storage/me")
	if a.status != 200 {
		return fmt.Sprintf("storage/me: %d %s", a.status, a.raw)
	}
	var st struct {
		Used     int64 `json:"used_bytes"`
		Reserved int64 `json:"reserved_bytes"`
	}
	_ = json.Unmarshal(a.raw, &st)
	if st.Used != stored || st.Reserved < held || st.Reserved > held+maybe {
		return fmt.Sprintf("%s's storage: used %d reserved %d; want used %d (live ready videos and posters) reserved %d (open uploads) to %d (and uploads whose creation was cut)",
			u.name, st.Used, st.Reserved, stored, held, held+maybe)
	}
	a = u.cl.get("/api/v1/usage/me")
	if a.status != 200 {
		return fmt.Sprintf("usage/me: %d %s", a.status, a.raw)
	}
	var us struct {
		Upload struct {
			Used     int64 `json:"used_bytes"`
			Reserved int64 `json:"reserved_bytes"`
		} `json:"upload"`
	}
	_ = json.Unmarshal(a.raw, &us)
	if us.Upload.Used != uploaded || us.Upload.Reserved < held || us.Upload.Reserved > held+maybe {
		return fmt.Sprintf("%s's daily upload: used %d reserved %d; want used %d (every video that became ready) reserved %d to %d",
			u.name, us.Upload.Used, us.Upload.Reserved, uploaded, held, held+maybe)
	}
	return ""
}

// posterBytes is the size of a video's poster, -1 while the placeholder
// stands in for it.
func (c *crash) posterBytes(u *crashUser, id string) int64 {
	a := u.cl.do("POST", "/api/v1/videos/"+id+"/playback", nil)
	if a.status != 200 {
		return -1
	}
	var pb struct {
		PosterURL string `json:"poster_url"`
	}
	if json.Unmarshal(a.raw, &pb) != nil || pb.PosterURL == "" {
		return -1
	}
	p := u.cl.get(pb.PosterURL)
	if p.status != 200 || p.header.Get("Cache-Control") == "no-store" {
		return -1
	}
	return int64(len(p.raw))
}

// files checks that the spool holds no work file of a dead process and
// that the tus directory holds only open uploads' files. Poster sources
// stay for videos whose poster is still to cut (their jobs, taken over
// from the dead process, run at idle priority) or that went to the trash
// first (a restore cuts it from there); with drained, every live video
// must have its poster by now.
func (c *crash) files(drained bool) string {
	spool := filepath.Join(c.all.dataDir, "uploads", "spool")
	entries, _ := os.ReadDir(spool)
	c.mu.Lock()
	pending := false
	for _, v := range c.videos {
		if v.state == stLive && v.status == "ready" && v.poster < 0 {
			pending = true
		}
	}
	for _, e := range entries {
		name := e.Name()
		if id, ok := strings.CutSuffix(strings.TrimPrefix(name, "upload-"), ".poster-source"); ok {
			v := c.videos[id]
			switch {
			case v == nil || v.state == stPurged || v.status == "failed":
				c.mu.Unlock()
				return fmt.Sprintf("spool file %s of a video that is gone", name)
			case v.state == stLive && (v.poster >= 0 || drained):
				c.mu.Unlock()
				return fmt.Sprintf("spool file %s of a live video whose poster is cut (%d bytes)", name, v.poster)
			}
			continue
		}
		if strings.HasPrefix(name, "reel-poster-") && pending && !drained {
			continue // a poster being cut
		}
		c.mu.Unlock()
		return fmt.Sprintf("spool file %s left", name)
	}
	c.mu.Unlock()
	open := map[string]bool{}
	c.mu.Lock()
	for _, u := range c.users {
		for _, up := range u.open {
			open[filepath.Base(up.loc)] = true
		}
	}
	maybe := 0
	for _, u := range c.users {
		maybe += len(u.maybe)
	}
	c.mu.Unlock()
	entries, _ = os.ReadDir(filepath.Join(c.all.dataDir, "uploads", "tus"))
	unknown := map[string]bool{}
	for _, e := range entries {
		id, _, _ := strings.Cut(e.Name(), ".")
		if !open[id] {
			unknown[id] = true
		}
	}
	if len(unknown) > maybe {
		return fmt.Sprintf("the tus directory holds %d uploads not open (%d creations were cut): %v", len(unknown), maybe, unknown)
	}
	return ""
}

// events checks each video's transactional events against its state and
// the changes answered 2xx.
func (c *crash) events() string {
	byVideo := map[string][]outbox.Event{}
	for _, action := range []string{"UPLOAD_VIDEO", "DELETE_VIDEO", "RESTORE_VIDEO", "PURGE_VIDEO"} {
		evs, msg := list[outbox.Event](c.admin, "/api/v1/logs?limit=1000&outcome=success&action="+action)
		if msg != "" {
			return msg
		}
		for _, e := range evs {
			if e.TargetID == nil {
				return fmt.Sprintf("%s event %s names no video", action, e.ID)
			}
			byVideo[*e.TargetID] = append(byVideo[*e.TargetID], e)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, evs := range byVideo {
		v := c.videos[id]
		if v == nil {
			return fmt.Sprintf("events for video %s, which never existed: %s", id, actions(evs))
		}
		// Event ids are UUIDv7: in the order they were made.
		sort.Slice(evs, func(i, j int) bool { return evs[i].ID < evs[j].ID })
		byVideo[id] = evs
	}
	for _, v := range c.videos {
		if v.status == "failed" || (!v.ready && v.state != stPurged) {
			continue
		}
		if msg := v.wantEvents(byVideo[v.id]); msg != "" {
			return fmt.Sprintf("video %s (%s; deletes %d answered of %d sent, restores %d of %d): %s; events %s",
				v.id, v.state, v.ackDel, v.tryDel, v.ackRes, v.tryRes, msg, actions(byVideo[v.id]))
		}
	}
	return ""
}

func actions(evs []outbox.Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.Action)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// wantEvents checks one video's events: one upload first, then trashes
// and restores in turn, a purge only last and after a trash, ending in
// the state the video is in, with every answered change there and no more
// changes than were sent.
func (v *crashVideo) wantEvents(evs []outbox.Event) string {
	if len(evs) == 0 || evs[0].Action != "UPLOAD_VIDEO" {
		return "the first event is not its upload"
	}
	var del, res, purge int
	trashed := false
	for _, e := range evs[1:] {
		switch e.Action {
		case "UPLOAD_VIDEO":
			return "uploaded twice"
		case "DELETE_VIDEO":
			if trashed || purge > 0 {
				return "trashed while in the trash or purged"
			}
			del, trashed = del+1, true
		case "RESTORE_VIDEO":
			if !trashed || purge > 0 {
				return "restored while not in the trash"
			}
			res, trashed = res+1, false
		case "PURGE_VIDEO":
			if !trashed || purge > 0 {
				return "purged while not in the trash, or twice"
			}
			purge++
		}
	}
	switch {
	case del < v.ackDel || res < v.ackRes:
		return "an answered change has no event"
	case del > v.tryDel || res > v.tryRes:
		return "more changes logged than were sent"
	case v.state == stLive && trashed, v.state == stTrash && (!trashed || purge > 0), v.state == stPurged && purge != 1:
		return "the events do not end in the video's state"
	}
	return ""
}

// check runs reel check -json with no grace on the data directory while
// the process runs: it must find nothing, and nothing in flight.
func (c *crash) check() string {
	cmd := exec.Command(reelBin, "check", "-json", "-grace", "0")
	cmd.Env = append(os.Environ(), c.all.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var rep videos.CheckReport
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
		return fmt.Sprintf("reel check: %v, %v\n%s%s", err, jerr, stdout.Bytes(), stderr.Bytes())
	}
	if len(rep.Findings) > 0 || rep.InFlight > 0 || err != nil {
		return fmt.Sprintf("reel check (%v): %d in flight, findings %s", err, rep.InFlight, stdout.Bytes())
	}
	return ""
}

// summary counts the videos by state and the changes answered, for the log.
func (c *crash) summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	states := map[string]int{}
	var del, res, unanswered int
	for _, v := range c.videos {
		states[v.state+"/"+v.status]++
		del, res = del+v.ackDel, res+v.ackRes
		if !v.acked {
			unanswered++
		}
	}
	open := 0
	for _, u := range c.users {
		open += len(u.open)
	}
	return fmt.Sprintf("videos %v (%d uploads unanswered), %d trashes and %d restores answered, %d resumable uploads open", states, unanswered, del, res, open)
}
