package integration

import (
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
	"github.com/reel-video/reel/internal/videos"
)

// TestCrashHarness kills the all-in-one process (SIGKILL) at a random
// moment, round after round on the same data directory and database,
// while users upload (multipart and tus), trash and restore videos, an
// admin has the purge run, and the outbox delivers their events. After
// each restart and the recovery window (REEL_RESERVE_LEASE of 2 s, the
// sweeps every second, a dead poster job taken over after three missed
// heartbeats) it checks, per user and over the whole system:
//
//   - reel check -json with no grace finds nothing and nothing in flight:
//     every ledger counts the stored bytes, no blob belongs to no video,
//     no reservation outlives its lease;
//   - storage used is the user's live ready videos and their posters,
//     daily upload used is every upload that became a video, and what is
//     reserved is only what open resumable uploads hold;
//   - no spool file is left, and the tus directory holds only open
//     uploads' files;
//   - each video's transactional events (UPLOAD_VIDEO, DELETE_VIDEO,
//     RESTORE_VIDEO, PURGE_VIDEO: written in the action's transaction) are
//     in the activity log once per change its state went through: every
//     change answered 2xx before the kill is there, none twice, and none
//     for a change that did not happen. Events recorded after the answer
//     (listings, playback, failures) may be lost at a kill and are not
//     checked.
//
// It runs with REEL_TEST_CRASH=1, which the test command (scripts/test.sh)
// sets: 2 rounds on SQLite. REEL_TEST_CRASH_ROUNDS sets more (make crash:
// 3 by default; it then also waits in the end for every poster the kills
// interrupted), REEL_TEST_CRASH_SEED replays a run (the seed is logged:
// the kill delays and each worker's choices repeat, the machine's timing
// does not), and REEL_TEST_CRASH_POSTGRES=1 adds the same on PostgreSQL.
func TestCrashHarness(t *testing.T) {
	// A plain go test leaves it out: it kills processes for a minute.
	if os.Getenv("REEL_TEST_CRASH") != "1" {
		t.Skip("the crash harness runs with REEL_TEST_CRASH=1 (scripts/test.sh, make crash)")
	}
	rounds := 2
	if s := os.Getenv("REEL_TEST_CRASH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("REEL_TEST_CRASH_ROUNDS=%q: want a positive number", s)
		}
		rounds = n
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("REEL_TEST_CRASH_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("REEL_TEST_CRASH_SEED=%q: want a number", s)
		}
		seed = n
	}
	t.Logf("crash harness: %d rounds, seed %d (replay with REEL_TEST_CRASH_SEED=%d)", rounds, seed, seed)
	engines := []string{"sqlite"}
	if os.Getenv("REEL_TEST_CRASH_POSTGRES") == "1" {
		engines = append(engines, "postgres")
	}
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) { crashRounds(t, engine, rounds, seed) })
	}
}

// crash is one run of the harness: the process, its users, and what the
// test knows of every video and resumable upload.
type crash struct {
	t     *testing.T
	all   *proc
	admin *client
	users []*crashUser
	clips [][]byte
	// bodies and ctypes are the clips as multipart upload bodies.
	bodies [][]byte
	ctypes []string
	// mu guards the model below and the users' upload lists.
	mu     sync.Mutex
	videos map[string]*crashVideo
	// errors are answers no kill explains (5xx before the kill).
	errors []string
}

type crashUser struct {
	name string
	id   string
	cl   *client
	// open are the resumable uploads created (answered 201) and not
	// known to be finished; maybe counts creations in flight at a kill,
	// whose upload may exist without the test knowing its address.
	open  []*crashTus
	maybe []int64
}

type crashTus struct {
	loc     string
	content []byte
	offset  int64
}

// crashVideo is what the test knows of a video: its state after the last
// resynchronisation, and how many trashes and restores were answered 2xx
// (acked) or sent (tried) since it was created.
type crashVideo struct {
	id, owner      string
	size           int64
	acked          bool // its upload was answered 2xx
	ready          bool // it was ready once (its upload counts in the day's volume)
	state          string
	status         string
	busy           bool
	poster         int64 // bytes of its poster once cut, else -1
	ackDel, tryDel int
	ackRes, tryRes int
}

const (
	stLive   = "live"
	stTrash  = "trash"
	stPurged = "purged"
)

func crashRounds(t *testing.T, engine string, rounds int, seed uint64) {
	c := &crash{t: t, videos: map[string]*crashVideo{}}
	for _, file := range []string{makeVideo(t, 1), makeVideo(t, 2), makeNoisyVideo(t)} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		body, ctype := multipartBody(t, file, "crash multipart")
		c.clips, c.bodies, c.ctypes = append(c.clips, b), append(c.bodies, body.Bytes()), append(c.ctypes, ctype)
	}

	dataDir := t.TempDir()
	env := append([]string{"REEL_DATA_DIR=" + dataDir}, limits...)
	env = append(env, "REEL_STORAGE_QUOTA=1GiB", "REEL_DAILY_UPLOAD_LIMIT=1GiB",
		"REEL_RESERVE_LEASE=2s", "REEL_JOB_HEARTBEAT=1s", "REEL_TRASH_RETENTION=1s", "REEL_CHECK_INTERVAL=0")
	if engine == "postgres" {
		env = append(env, "REEL_DATABASE_URL="+sqldbtest.PostgresURL(t))
	}
	cl := &cluster{t: t, procs: map[string]*proc{}}
	c.all = cl.add("all", env...)
	c.all.dataDir = dataDir
	c.all.start()
	cl.entry = c.all.base()
	for _, name := range []string{"ann", "bob"} {
		u := &crashUser{name: name, cl: cl.client()}
		u.id = u.cl.login(name+"@example.com", "correct horse", true)
		c.users = append(c.users, u)
	}
	c.admin = cl.client()
	c.admin.login(adminEmail, adminPassword, false)

	// The purge runs once at start, when River has elected a leader: from
	// then on the purge worker can have it run again.
	eventually(t, time.Minute, func() string {
		if a := c.admin.get("/api/v1/jobs?kind=" + videos.KindPurge + "&state=completed&limit=1"); !strings.Contains(string(a.raw), `"id"`) {
			return fmt.Sprintf("no purge has run yet: %d %s", a.status, a.raw)
		}
		return ""
	})
	rng := mrand.New(mrand.NewPCG(seed, 0))
	for round := 1; round <= rounds; round++ {
		delay := time.Duration(200+rng.IntN(2800)) * time.Millisecond
		c.round(round, seed, delay)
		if t.Failed() {
			t.Fatalf("round %d of seed %d (REEL_TEST_CRASH_SEED=%d REEL_TEST_CRASH_ROUNDS=%d) broke an invariant", round, seed, seed, round)
		}
	}
	// In the end the dead processes' poster jobs have been taken over and
	// done: every live video has its poster and no poster source is left
	// for it. River takes a dead process's running job over only once a
	// new leader is elected and its rescuer passes (up to about 45 s), so
	// only the longer runs wait for that.
	if os.Getenv("REEL_TEST_CRASH_ROUNDS") != "" {
		c.wantRecovered(0, true)
	}
}

// round drives traffic, kills the process after delay, restarts it and
// checks the invariants once recovery is done.
func (c *crash) round(round int, seed uint64, delay time.Duration) {
	t := c.t
	stop := make(chan struct{})
	var wg sync.WaitGroup
	worker := func(n uint64, f func(r *mrand.Rand, stop <-chan struct{})) {
		r := mrand.New(mrand.NewPCG(seed, uint64(round)<<8|n))
		wg.Add(1)
		go func() { defer wg.Done(); f(r, stop) }()
	}
	for i, u := range c.users {
		worker(uint64(3*i+1), func(r *mrand.Rand, stop <-chan struct{}) { c.multipartWorker(u, r, stop) })
		worker(uint64(3*i+2), func(r *mrand.Rand, stop <-chan struct{}) { c.tusWorker(u, r, stop) })
		worker(uint64(3*i+3), func(r *mrand.Rand, stop <-chan struct{}) { c.trashWorker(u, r, stop) })
	}
	worker(100, func(r *mrand.Rand, stop <-chan struct{}) { c.purgeWorker(r, stop) })
	time.Sleep(delay)
	c.all.kill()
	close(stop)
	wg.Wait()
	t.Logf("round %d: killed after %s", round, delay)

	c.all.start()
	for _, u := range c.users {
		u.cl.login(u.name+"@example.com", "correct horse", false)
	}
	c.admin.login(adminEmail, adminPassword, false)
	c.mu.Lock()
	errs := c.errors
	c.errors = nil
	c.mu.Unlock()
	for _, e := range errs {
		t.Errorf("round %d: %s", round, e)
	}
	c.wantRecovered(round, false)
}

// note records an answer that no kill explains.
func (c *crash) note(what string, a answer) {
	if a.status >= 500 {
		c.mu.Lock()
		c.errors = append(c.errors, fmt.Sprintf("%s: %d %s", what, a.status, a.raw))
		c.mu.Unlock()
	}
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// pause sleeps up to max, less if stop closes.
func pause(r *mrand.Rand, stop <-chan struct{}, max time.Duration) {
	select {
	case <-stop:
	case <-time.After(time.Duration(r.Int64N(int64(max)))):
	}
}

// multipartWorker uploads clips, each body paced so the kill may find it
// arriving, being finalised or answered.
func (c *crash) multipartWorker(u *crashUser, r *mrand.Rand, stop <-chan struct{}) {
	for !stopped(stop) {
		k := r.IntN(len(c.clips))
		content, body := c.clips[k], c.bodies[k]
		open := make(chan struct{})
		close(open)
		pace := time.Duration(1+r.IntN(20)) * time.Millisecond
		a := <-u.cl.paced(open, pace, "POST", "/api/v1/videos", body, min(len(body), 16<<10), "Content-Type", c.ctypes[k])
		c.note("multipart upload", a)
		if a.status == -1 {
			return // the process is gone
		}
		if a.status == 201 {
			var v struct {
				Video struct {
					ID string `json:"id"`
				} `json:"video"`
			}
			if err := json.Unmarshal(a.raw, &v); err == nil {
				c.uploaded(u, v.Video.ID, int64(len(content)))
			}
		}
		pause(r, stop, 200*time.Millisecond)
	}
}

// tusWorker finishes the resumable uploads a kill interrupted, then
// creates new ones and sends each in two to four pieces.
func (c *crash) tusWorker(u *crashUser, r *mrand.Rand, stop <-chan struct{}) {
	for !stopped(stop) {
		c.mu.Lock()
		var up *crashTus
		if len(u.open) > 0 {
			up = u.open[0]
		}
		c.mu.Unlock()
		if up == nil {
			content := c.clips[r.IntN(len(c.clips))]
			c.mu.Lock()
			u.maybe = append(u.maybe, int64(len(content)))
			c.mu.Unlock()
			a := u.cl.do("POST", "/api/v1/uploads", nil, "Tus-Resumable", "1.0.0",
				"Upload-Length", strconv.Itoa(len(content)), "Upload-Metadata", tusMeta("crash tus", "clip.mp4"))
			c.note("tus create", a)
			if a.status == -1 {
				return // the process is gone: the creation stays maybe
			}
			if a.status != 201 {
				c.mu.Lock()
				u.maybe = u.maybe[:len(u.maybe)-1]
				c.mu.Unlock()
				pause(r, stop, 200*time.Millisecond)
				continue
			}
			up = &crashTus{loc: u.cl.base + locPath(a.header.Get("Location")), content: content}
			c.mu.Lock()
			u.maybe = u.maybe[:len(u.maybe)-1]
			u.open = append(u.open, up)
			c.mu.Unlock()
		}
		for !stopped(stop) && up.offset < int64(len(up.content)) {
			end := min(int64(len(up.content)), up.offset+1+r.Int64N(int64(len(up.content))/2))
			open := make(chan struct{})
			close(open)
			a := <-u.cl.paced(open, time.Duration(1+r.IntN(10))*time.Millisecond, "PATCH", up.loc,
				up.content[up.offset:end], 0, tusPatchHeaders(up.offset)...)
			c.note("tus patch", a)
			if a.status != 204 {
				break
			}
			up.offset = end
			if id := a.header.Get("Reel-Video-Id"); id != "" {
				c.uploaded(u, id, int64(len(up.content)))
				c.mu.Lock()
				u.open = u.open[1:]
				c.mu.Unlock()
			}
		}
		pause(r, stop, 200*time.Millisecond)
	}
}

// locPath is the path of a tus Location.
func locPath(loc string) string {
	if i := strings.Index(loc, "/api/"); i >= 0 {
		return loc[i:]
	}
	return loc
}

func (c *crash) uploaded(u *crashUser, id string, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := c.videos[id]; v != nil {
		v.acked = true
		return
	}
	c.videos[id] = &crashVideo{id: id, owner: u.id, size: size, acked: true, ready: true, state: stLive, status: "ready", poster: -1}
}

// trashWorker trashes the user's live videos and restores trashed ones,
// one request at a time per video.
func (c *crash) trashWorker(u *crashUser, r *mrand.Rand, stop <-chan struct{}) {
	for !stopped(stop) {
		pause(r, stop, 150*time.Millisecond)
		c.mu.Lock()
		var pick []*crashVideo
		for _, v := range c.videos {
			if v.owner == u.id && !v.busy && v.status == "ready" && (v.state == stLive || v.state == stTrash) {
				pick = append(pick, v)
			}
		}
		if len(pick) == 0 {
			c.mu.Unlock()
			continue
		}
		sortVideos(pick)
		v := pick[r.IntN(len(pick))]
		v.busy = true
		del := v.state == stLive
		if del {
			v.tryDel++
		} else {
			v.tryRes++
		}
		c.mu.Unlock()
		var a answer
		if del {
			a = u.cl.do("DELETE", "/api/v1/videos/"+v.id, nil)
			c.note("delete", a)
		} else {
			a = u.cl.do("POST", "/api/v1/videos/"+v.id+"/restore", nil)
			c.note("restore", a)
		}
		c.mu.Lock()
		switch {
		case del && a.status == 204:
			v.ackDel++
			v.state = stTrash
			v.busy = false
		case !del && a.status == 200:
			v.ackRes++
			v.state = stLive
			v.busy = false
		case a.status > 0 && a.status < 500:
			v.busy = false // refused (a purge won, or no room): no change
		}
		// Else the outcome is unknown: the video stays busy until the
		// resynchronisation after the restart.
		c.mu.Unlock()
	}
}

// purgeWorker has the purge job run again now and then (the trash keeps
// videos 1 s here), so that the kill may find a purge half-way.
func (c *crash) purgeWorker(r *mrand.Rand, stop <-chan struct{}) {
	for !stopped(stop) {
		pause(r, stop, 300*time.Millisecond)
		a := c.admin.get("/api/v1/jobs?kind=" + videos.KindPurge + "&limit=1")
		c.note("list purge jobs", a)
		if a.status != 200 {
			continue
		}
		var jobs struct {
			Items []struct {
				ID    int64  `json:"id"`
				State string `json:"state"`
			} `json:"items"`
		}
		if err := json.Unmarshal(a.raw, &jobs); err != nil || len(jobs.Items) == 0 || jobs.Items[0].State != "completed" {
			continue
		}
		a = c.admin.do("POST", "/api/v1/jobs/"+strconv.FormatInt(jobs.Items[0].ID, 10)+"/retry", nil)
		c.note("retry the purge", a)
	}
}
