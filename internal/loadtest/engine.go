// Package loadtest drives a running reel over HTTP the way the original
// system's JMeter test did: many concurrent virtual users, each registering
// once, logging in, then reading the feed, their storage, their daily usage
// and their activity log, uploading a small real video, playing a video by
// byte ranges and deleting one, with an admin reading every log; the same
// users sign in on the web app's login form and open its server-rendered
// pages with that cookie session (pages.go). It records per-route latency
// and errors over time and writes JSON results and an HTML report with SVG
// charts.
//
// A run is always bounded (users, duration, request count and per-request
// timeout all have hard caps), stops by itself, and sends requests only to
// the base URL it is given: playback URLs pointing anywhere else are
// refused, and redirects are never followed.
package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// errForeignURL rejects a URL from the server that leaves the target.
var errForeignURL = errors.New("refused: URL outside the target")

// errStop means the run is over: no more requests may be sent.
var errStop = errors.New("run stopped")

// Run drives cfg.BaseURL and returns what it measured. It returns when the
// load phase's duration is over, when the request count is spent, or when
// ctx is cancelled (an interrupted run still returns its results), always
// after waiting for requests in flight (at most cfg.Timeout).
func Run(ctx context.Context, cfg Config) (*Results, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r, err := newRun(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer r.client.CloseIdleConnections()
	return r.run(ctx), nil
}

type run struct {
	cfg      Config
	base     *url.URL
	client   *http.Client
	rec      *Recorder
	start    time.Time
	runID    string
	password string
	actions  []Action // cumulative pick table: action i covers [cum[i-1], cum[i])
	cum      []int

	// reqCtx parents every request: cancelled when the caller's context is,
	// or when requests in flight outlive the end of the run by too much.
	reqCtx    context.Context
	reqCancel context.CancelFunc

	stop       chan struct{} // closed: send no new request
	stopOnce   sync.Once
	stopReason atomic.Value // string

	issued   atomic.Int64 // requests sent, for the request cap
	answered atomic.Int64
	failed   atomic.Int64
	ready    atomic.Int64 // users past setup
	skipped  sync.Map     // Action → *atomic.Int64

	adminMu    sync.Mutex
	adminToken string

	pages      bool // page actions are in the mix: users log in on the web too
	webRefused sync.Once

	notesMu sync.Mutex
	notes   []string
}

func newRun(ctx context.Context, cfg Config) (*run, error) {
	base, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	var pw [9]byte
	_, _ = rand.Read(pw[:])
	r := &run{
		cfg:      cfg,
		base:     base,
		runID:    hex.EncodeToString(id[:]),
		password: "lt-" + hex.EncodeToString(pw[:]),
		stop:     make(chan struct{}),
	}
	r.reqCtx, r.reqCancel = context.WithCancel(ctx)
	r.client = newClient(cfg)

	w := Weights{}
	for a, n := range cfg.Weights {
		w[a] = n
	}
	if cfg.Video == nil && w[ActUpload] > 0 {
		delete(w, ActUpload)
		r.note("no video file to upload (is ffmpeg installed?): the upload action is skipped")
	}
	if cfg.AdminEmail == "" && w[ActAdminLogs] > 0 {
		delete(w, ActAdminLogs)
		r.note("no admin credentials given: the admin_logs action is skipped")
	}
	// Each user keeps a connection open: past the open-file limit, dials
	// fail with "too many open files", which says nothing about the server.
	if limit, ok := openFileLimit(); ok && uint64(cfg.Users)+64 > limit {
		r.note("%d users need about as many open files, and the limit is %d (ulimit -n): expect too_many_open_files errors", cfg.Users, limit)
	}
	if w.total() == 0 {
		return nil, errors.New("no action left to run (upload needs a video, admin_logs needs admin credentials)")
	}
	for _, a := range pageActions {
		r.pages = r.pages || w[a] > 0
	}
	total := 0
	for _, a := range Actions {
		if n := w[a]; n > 0 {
			total += n
			r.actions = append(r.actions, a)
			r.cum = append(r.cum, total)
		}
	}
	return r, nil
}

// newAPIRun returns a run for another scenario (viewers, first
// rendition) to send its API requests through: users sign up and log in
// and requests are sent and recorded as in the mix, but there is no load
// phase; halt ends it. users sizes its connection pool.
func newAPIRun(ctx context.Context, base string, users int, timeout time.Duration, insecure bool, log *slog.Logger) (*run, error) {
	cfg, err := Config{BaseURL: base, Users: min(max(users, 1), MaxUsers), Duration: MaxDuration, Timeout: timeout,
		Insecure: insecure, Weights: Weights{ActFeed: 1}, Log: log}.withDefaults()
	if err != nil {
		return nil, err
	}
	r, err := newRun(ctx, cfg)
	if err != nil {
		return nil, err
	}
	r.start = time.Now()
	r.rec = NewRecorder(r.start, time.Second, 4*runtime.GOMAXPROCS(0))
	return r, nil
}

// close ends a run made by newAPIRun.
func (r *run) close() {
	r.halt("done")
	r.reqCancel()
	r.client.CloseIdleConnections()
}

// apiRoutes are the figures of the requests sent through r so far.
func (r *run) apiRoutes() []RouteResult {
	stats := r.rec.Snapshot()
	var out []RouteResult
	for _, info := range Routes {
		if rs, ok := stats[info.Name]; ok {
			out = append(out, rs.Result(info.Name, r.rec.Width()))
		}
	}
	return out
}

func (r *run) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.notesMu.Lock()
	r.notes = append(r.notes, msg)
	r.notesMu.Unlock()
	r.cfg.Log.Warn(msg)
}

func (r *run) halt(reason string) {
	r.stopOnce.Do(func() {
		r.stopReason.Store(reason)
		close(r.stop)
	})
}

// stopped reports whether the run is over. An interrupted context counts at
// once, before the goroutine that closes stop has run, so that no user
// sends a request that could only be cancelled.
func (r *run) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return r.reqCtx.Err() != nil
	}
}

// run is the whole run: setup, load, drain, results.
func (r *run) run(ctx context.Context) *Results {
	r.start = time.Now()
	r.rec = NewRecorder(r.start, r.cfg.Bucket, 4*runtime.GOMAXPROCS(0))
	r.cfg.Log.Info("load test starting", "target", r.cfg.BaseURL, "users", r.cfg.Users,
		"duration", r.cfg.Duration, "requests", r.cfg.Requests, "weights", Weights(r.weightMap()).String(), "run", r.runID)

	// An interrupt stops new requests at once; requests in flight are
	// cancelled too, since whoever interrupted wants out.
	go func() {
		select {
		case <-ctx.Done():
			r.halt("interrupted")
		case <-r.stop:
		}
	}()
	progressDone := make(chan struct{})
	var phase atomic.Value
	phase.Store("setup")
	if r.cfg.Progress > 0 {
		go r.progress(&phase, progressDone)
	}

	if r.cfg.AdminEmail != "" {
		go r.adminLogin()
	}

	var setup, users sync.WaitGroup
	loadGo := make(chan struct{})
	setup.Add(r.cfg.Users)
	users.Add(r.cfg.Users)
	for i := range r.cfg.Users {
		go func() {
			defer users.Done()
			r.user(i, &setup, loadGo)
		}()
	}

	// Setup ends when every user is in, or at the setup timeout, or when
	// the run stops; users still registering then join the load late.
	setupDone := make(chan struct{})
	go func() { setup.Wait(); close(setupDone) }()
	setupTimer := time.NewTimer(r.cfg.SetupTimeout)
	select {
	case <-setupDone:
	case <-setupTimer.C:
		r.note("setup timed out after %s: %d of %d users ready when the load phase began", r.cfg.SetupTimeout, r.ready.Load(), r.cfg.Users)
	case <-r.stop:
	}
	setupTimer.Stop()
	loadStart := time.Now()
	phase.Store("load")
	close(loadGo)
	r.cfg.Log.Info("setup over", "elapsed", loadStart.Sub(r.start).Round(time.Millisecond), "users_ready", r.ready.Load())

	loadTimer := time.NewTimer(r.cfg.Duration)
	go func() {
		select {
		case <-loadTimer.C:
			r.halt("duration")
		case <-r.stop:
		}
	}()
	<-r.stop
	loadTimer.Stop()
	loadEnd := time.Now()

	// Requests in flight finish (they are measured); past their timeout
	// and a grace they are cancelled, so the run always ends.
	allDone := make(chan struct{})
	go func() { users.Wait(); close(allDone) }()
	select {
	case <-allDone:
	case <-time.After(r.cfg.Timeout + 5*time.Second):
		r.note("requests still in flight %s after the end were cancelled", r.cfg.Timeout+5*time.Second)
		r.reqCancel()
		<-allDone
	}
	r.reqCancel()
	close(progressDone)
	return r.results(loadStart, loadEnd)
}

func (r *run) weightMap() map[Action]int {
	w := map[Action]int{}
	prev := 0
	for i, a := range r.actions {
		w[a] = r.cum[i] - prev
		prev = r.cum[i]
	}
	return w
}

func (r *run) progress(phase *atomic.Value, done <-chan struct{}) {
	t := time.NewTicker(r.cfg.Progress)
	defer t.Stop()
	last, lastAt := int64(0), time.Now()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			n := r.answered.Load()
			r.cfg.Log.Info("progress", "phase", phase.Load(), "elapsed", now.Sub(r.start).Round(time.Second),
				"users_ready", r.ready.Load(), "requests", n, "errors", r.failed.Load(),
				"rps", int(float64(n-last)/now.Sub(lastAt).Seconds()))
			last, lastAt = n, now
		}
	}
}

func (r *run) results(loadStart, loadEnd time.Time) *Results {
	stats := r.rec.Snapshot()
	reason, _ := r.stopReason.Load().(string)
	res := &Results{
		Tool:        "reel loadtest",
		Target:      r.cfg.BaseURL,
		StartedAt:   r.start.UTC(),
		Users:       r.cfg.Users,
		DurationS:   r.cfg.Duration.Seconds(),
		RequestsCap: r.cfg.Requests,
		Weights:     Weights(r.weightMap()).String(),
		ThinkMS:     ms(r.cfg.Think),
		RampS:       r.cfg.Ramp.Seconds(),
		TimeoutS:    r.cfg.Timeout.Seconds(),
		UsersReady:  int(r.ready.Load()),
		SetupS:      loadStart.Sub(r.start).Seconds(),
		LoadS:       loadEnd.Sub(loadStart).Seconds(),
		BucketS:     r.cfg.Bucket.Seconds(),
		StopReason:  reason,
		Client:      ClientInfo{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH},
	}
	var last time.Duration
	for _, info := range Routes {
		rs, ok := stats[info.Name]
		if !ok {
			continue
		}
		rr := rs.Result(info.Name, r.cfg.Bucket)
		res.Routes = append(res.Routes, rr)
		res.Totals.Requests += rr.Requests
		res.Totals.Errors += rr.Errors
		res.Totals.Canceled += rr.Canceled
		last = max(last, rs.Last)
		// A route that answered nothing but 404 is most likely not served
		// by this server (yet): say so rather than leave a wall of errors.
		if rr.Requests > 0 && rr.Status[http.StatusNotFound] == rr.Requests {
			r.note("route %s (%s %s): every answer was 404: not served by this server?", rr.Name, rr.Method, rr.Path)
		}
	}
	if last > 0 {
		res.Totals.Throughput = float64(res.Totals.Requests) / last.Seconds()
	}
	r.skipped.Range(func(k, v any) bool {
		if res.Skipped == nil {
			res.Skipped = map[string]int64{}
		}
		res.Skipped[string(k.(Action))] = v.(*atomic.Int64).Load()
		return true
	})
	r.notesMu.Lock()
	res.Notes = append([]string(nil), r.notes...)
	r.notesMu.Unlock()
	return res
}

func (r *run) skip(a Action) {
	v, _ := r.skipped.LoadOrStore(a, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// vuser is one virtual user's state, touched only by its goroutine.
type vuser struct {
	n        int
	rng      *mrand.Rand
	email    string
	token    string
	feed     []string // ids of ready videos seen in the last feed read
	mine     []string // ids of own uploads not yet deleted, oldest first
	uploads  int
	loggedIn time.Time
	web      webSession
}

func (r *run) newUser(n int) *vuser {
	return &vuser{
		n:     n,
		rng:   mrand.New(mrand.NewPCG(uint64(n), uint64(time.Now().UnixNano()))),
		email: fmt.Sprintf("lt-%s-%05d@example.com", r.runID, n),
	}
}

// user is one virtual user's life: set up, wait for the load phase, then
// act and pause until the run stops.
func (r *run) user(n int, setup *sync.WaitGroup, loadGo <-chan struct{}) {
	u := r.newUser(n)
	if r.cfg.Ramp > 0 && r.cfg.Users > 1 && !r.pause(r.cfg.Ramp*time.Duration(n)/time.Duration(r.cfg.Users)) {
		setup.Done()
		return
	}
	ok := r.signUp(u)
	setup.Done()
	if !ok {
		return
	}
	r.ready.Add(1)
	select {
	case <-loadGo:
	case <-r.stop:
		return
	}
	// Start somewhere within one pause, so that users who all finished
	// setup together do not act in lockstep.
	if r.cfg.Think > 0 && !r.pause(time.Duration(u.rng.Int64N(int64(r.cfg.Think)))) {
		return
	}
	for !r.stopped() {
		if err := r.act(u, r.pick(u.rng)); errors.Is(err, errStop) {
			return
		}
		if r.cfg.Think > 0 && !r.pause(time.Duration(float64(r.cfg.Think)*(0.5+u.rng.Float64()))) {
			return
		}
	}
}

// pause waits d, or less if the run stops; it reports whether to go on.
func (r *run) pause(d time.Duration) bool {
	if d <= 0 {
		return !r.stopped()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.stop:
		return false
	}
}

func (r *run) pick(rng *mrand.Rand) Action {
	x := rng.IntN(r.cum[len(r.cum)-1])
	for i, c := range r.cum {
		if x < c {
			return r.actions[i]
		}
	}
	return r.actions[len(r.actions)-1]
}
