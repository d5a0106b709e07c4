package videos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/reel-video/reel/internal/media"
	"github.com/reel-video/reel/internal/media/mediatest"
	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/authn/authntest"
	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
	"github.com/reel-video/reel/internal/videos"
)

// ---------------------------------------------------------------------
// The environment: the videos service on a real database, a disk blob
// store and real ffprobe, behind a real HTTP server.

type envConfig struct {
	quota, daily  int64
	maxUpload     int64
	chunk         int64
	blobs         func(blob.Store) blob.Store
	noServer      bool
	trashRetained time.Duration
	// deps replaces the fakes with other implementations (the real
	// storage and usage services), built on the test's database.
	deps func(db *sqldb.DB) (videos.Quota, videos.UploadLimit, videos.Egress)
	// prober wraps the real prober.
	prober func(videos.Prober) videos.Prober
	// fairStep is the service's FairStep (default: fair queueing off, so
	// that tests need not wait for River's scheduler).
	fairStep time.Duration
	// stopGrace is the workers' WorkerConfig.StopGrace.
	stopGrace time.Duration
	// lease is the service's ReserveLease (default: the service's).
	lease time.Duration
	// spool is the spool directory (default: one of the env's own).
	spool string
	// tus is the tus directory (default: one of the env's own).
	tus string
	// iss issues the tokens (default: an issuer of the env's own); another
	// env's makes its users' tokens good here too.
	iss *authntest.Issuer
	// standing makes the verifier check accounts' standing (authn).
	standing authn.StandingSource
	// wrapQuota wraps the quota the service uses (a fake or the real one).
	wrapQuota func(videos.Quota) videos.Quota
	// wrapLimit wraps the daily upload limit the service uses.
	wrapLimit func(videos.UploadLimit) videos.UploadLimit
	// runner runs the media tools' ffmpeg and ffprobe (default: exec).
	runner media.Runner
	// streamingJobs enqueues streaming jobs on upload and restore, as the
	// app does (off by default: most tests check a video's own charges).
	streamingJobs bool
	// checkEvery is the periodic check's period (its job is only run
	// when a test enqueues it).
	checkEvery time.Duration
}

type env struct {
	t      testing.TB
	db     *sqldb.DB
	ob     *outbox.Outbox
	svc    *videos.Service
	tus    *videos.TUS
	srv    *httptest.Server
	quota  *fakeQuota
	limit  *fakeLimit
	egress *fakeEgress
	blobs  blob.Store
	iss    *authntest.Issuer
	// verifier checks the env's tokens (and, with envConfig.standing,
	// accounts' standing).
	verifier *authn.Verifier
	dirs     struct{ blobs, spool, tus string }
	mu       sync.Mutex
	now      time.Time
	// workers is started by the first cutPosters: until then jobs wait,
	// so tests see a video before its poster.
	workers sync.Once
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

func newEnv(t testing.TB, db *sqldb.DB, opts ...func(*envConfig)) *env {
	t.Helper()
	cfg := envConfig{quota: -1, daily: -1, maxUpload: 64 << 20, chunk: 64 << 10, trashRetained: 30 * 24 * time.Hour, fairStep: -1}
	for _, o := range opts {
		o(&cfg)
	}
	ctx := context.Background()
	if err := sqldb.Migrate(ctx, db, outbox.Migrations("videos_outbox", db.Dialect), outbox.VersionTable("videos_outbox")); err != nil {
		t.Fatal(err)
	}
	if err := videos.MigrateQueue(ctx, db); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, quota: newFakeQuota(cfg.quota), limit: newFakeLimit(cfg.daily), egress: newFakeEgress(),
		iss: cfg.iss, now: time.Now()}
	if e.iss == nil {
		e.iss = authntest.New(t)
	}
	root := t.TempDir()
	e.dirs.blobs, e.dirs.spool, e.dirs.tus = filepath.Join(root, "blobs"), filepath.Join(root, "spool"), filepath.Join(root, "tus")
	if cfg.spool != "" {
		e.dirs.spool = cfg.spool
	}
	if cfg.tus != "" {
		e.dirs.tus = cfg.tus
	}
	disk, err := blob.NewDisk(e.dirs.blobs)
	if err != nil {
		t.Fatal(err)
	}
	e.blobs = disk
	if cfg.blobs != nil {
		e.blobs = cfg.blobs(disk)
	}
	var (
		quota  videos.Quota       = e.quota
		limit  videos.UploadLimit = e.limit
		egress videos.Egress      = e.egress
	)
	if cfg.deps != nil {
		quota, limit, egress = cfg.deps(db)
	}
	// The check asks the real services (it has nothing to ask the fakes).
	ledger, _ := quota.(videos.Ledger)
	holds, _ := limit.(videos.Holds)
	if cfg.wrapQuota != nil {
		quota = cfg.wrapQuota(quota)
	}
	if cfg.wrapLimit != nil {
		limit = cfg.wrapLimit(limit)
	}
	// The media tools, when ffmpeg is installed: the streaming tests need
	// them (and skip without them, as the upload tests do).
	tools, err := media.New(media.Config{Runner: cfg.runner})
	if err != nil {
		tools = nil
	}
	var prober videos.Prober = media.NewProber(0)
	if cfg.prober != nil {
		prober = cfg.prober(prober)
	}
	e.ob = outbox.New(db, "videos_outbox")
	vcfg := videos.Config{
		MaxUploadSize: cfg.maxUpload, TrashRetention: cfg.trashRetained, PlaybackTTL: time.Hour,
		SpoolDir: e.dirs.spool, UploadExpiry: time.Hour, ReserveLease: cfg.lease,
		Workers: &videos.WorkerConfig{PollInterval: 50 * time.Millisecond}, FairStep: cfg.fairStep,
		CheckEvery: cfg.checkEvery,
	}
	videos.WithoutPeriodicJobs(&vcfg)
	if !cfg.streamingJobs {
		videos.WithoutStreamingJobs(&vcfg)
	}
	e.svc, err = videos.New(ctx, db, e.ob, videos.Deps{
		Blobs: e.blobs, Prober: prober, Quota: quota, Limit: limit, Egress: egress, Media: tools,
		Ledger: ledger, UploadHolds: holds,
	}, vcfg, obs.Discard())
	if err != nil {
		t.Fatal(err)
	}
	// Close at the end also keeps the service, and its spool lock, alive
	// for the whole test.
	t.Cleanup(func() { _ = e.svc.Close() })
	e.svc.SetClock(e.clock)
	if cfg.noServer {
		return e
	}
	mux := http.NewServeMux()
	e.verifier = e.iss.Verifier()
	if cfg.standing != nil {
		e.verifier.SetStanding(cfg.standing, nil)
	}
	videos.NewHandler(e.svc, e.verifier, videos.HandlerConfig{
		MediaChunk: cfg.chunk, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	}).Routes(mux)
	e.tus, err = videos.NewTUS(e.svc, e.verifier, e.dirs.tus, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, obs.Discard())
	if err != nil {
		t.Fatal(err)
	}
	e.tus.Routes(mux)
	e.srv = httptest.NewServer(httpx.Wrap(mux, httpx.MiddlewareConfig{Logger: obs.Discard()}))
	t.Cleanup(e.srv.Close)
	return e
}

func withEnv(t *testing.T, fn func(t *testing.T, e *env), opts ...func(*envConfig)) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		fn(t, newEnv(t, db, opts...))
	}, videos.Migrations(), videos.MigrationTable)
}

// user is a caller with a token.
type user struct {
	id, token string
}

func (e *env) user(role string) user {
	id := authntest.NewUserID()
	return user{id: id, token: e.iss.Token(e.t, id, role)}
}

func (u user) caller(role string) authn.Caller { return authn.Caller{UserID: u.id, Role: role} }

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

var client = &http.Client{Timeout: 2 * time.Minute}

// do sends a request; body may be nil, a string, []byte, an io.Reader or a
// value sent as JSON.
func (e *env) do(method, path, token string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	isJSON := false
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		buf, _ := json.Marshal(b)
		rd, isJSON = bytes.NewReader(buf), true
	}
	url := path
	if strings.HasPrefix(path, "/") {
		url = e.srv.URL + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if isJSON {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (r resp) code() string {
	c, _ := r.body["code"].(string)
	return c
}

func (r resp) video(t testing.TB) map[string]any {
	t.Helper()
	v, ok := r.body["video"].(map[string]any)
	if !ok {
		t.Fatalf("no video in %d %s", r.status, r.raw)
	}
	return v
}

// multipartBody builds an upload body in memory (small files only).
func multipartBody(t testing.TB, fields map[string]string, file []byte, filename string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if file != nil {
		fw, err := mw.CreateFormFile("video", filename)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write(file)
	}
	_ = mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

// upload sends a multipart upload of file with title.
func (e *env) upload(u user, title string, file []byte) resp {
	e.t.Helper()
	body, ct := multipartBody(e.t, map[string]string{"title": title}, file, "clip.mp4")
	return e.do("POST", "/api/v1/videos", u.token, body, "Content-Type", ct)
}

// mustUpload uploads, has the poster cut, and returns the video's id.
func (e *env) mustUpload(u user, title string, file []byte) string {
	e.t.Helper()
	r := e.upload(u, title, file)
	if r.status != 201 {
		e.t.Fatalf("upload: %d %s", r.status, r.raw)
	}
	e.cutPosters()
	return r.video(e.t)["id"].(string)
}

// startWorkers starts the service's job workers, as the app runs them,
// until the test ends.
func (e *env) startWorkers() {
	e.workers.Do(func() {
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.svc.RunJobs(ctx) }()
		e.t.Cleanup(func() {
			stop()
			// A poster run at SCHED_IDLE on a loaded machine may outlast
			// the stop's grace: that is no failure of the test's.
			if err := <-done; err != nil {
				e.t.Logf("stop the job workers: %v", err)
			}
		})
	})
}

// cutPosters has the workers run every poster job to its end, a job
// waiting for a retry or its turn (retryable, scheduled) being made
// available at once, as if its time had come: River's scheduler would
// take seconds. Posters are cut on idle cores only, which a busy test
// machine may keep from them for minutes: the wait is as long as the Prober's
// bound on a run.
func (e *env) cutPosters() {
	e.t.Helper()
	e.runJobs(videos.KindPoster)
}

// runJobs is cutPosters for the jobs of kinds.
func (e *env) runJobs(kinds ...string) {
	e.t.Helper()
	e.startWorkers()
	ctx := context.Background()
	q := e.svc.Queue()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		res, err := q.JobList(ctx, river.NewJobListParams().Kinds(kinds...).
			States(rivertype.JobStateAvailable, rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled, rivertype.JobStatePending).First(1000))
		if err != nil {
			e.t.Fatalf("list %v jobs: %v", kinds, err)
		}
		if len(res.Jobs) == 0 {
			return
		}
		for _, j := range res.Jobs {
			if j.State == rivertype.JobStateRetryable || j.State == rivertype.JobStateScheduled {
				if _, err := q.JobRetry(ctx, j.ID); err != nil {
					e.t.Fatalf("make job %d available: %v", j.ID, err)
				}
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%v jobs still unfinished: %d", kinds, len(res.Jobs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// posterJobs lists the poster jobs of a video (all of them, newest first).
func (e *env) posterJobs(id string) []*rivertype.JobRow {
	e.t.Helper()
	res, err := e.svc.Queue().JobList(context.Background(), river.NewJobListParams().Kinds(videos.KindPoster).
		TagsAll("video-"+id).OrderBy(river.JobListOrderByID, river.SortOrderDesc))
	if err != nil {
		e.t.Fatalf("list poster jobs: %v", err)
	}
	return res.Jobs
}

var (
	videoMu    sync.Mutex
	videoCache = map[string][]byte{}
)

// testVideo returns the bytes of a real MP4 made once per size.
func testVideo(t testing.TB, seconds, w, h int) []byte {
	t.Helper()
	key := fmt.Sprint(seconds, w, h)
	videoMu.Lock()
	defer videoMu.Unlock()
	if b, ok := videoCache[key]; ok {
		return b
	}
	path := mediatest.Video(t, "", seconds, w, h)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	videoCache[key] = b
	return b
}

// actions counts the events in the outbox by action.
func (e *env) actions() map[string]int {
	e.t.Helper()
	e.ob.Wait() // events of reads are written after the answer
	rows, err := e.db.R.Query(`SELECT payload FROM videos_outbox`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			e.t.Fatal(err)
		}
		var ev outbox.Event
		if err := json.Unmarshal([]byte(p), &ev); err != nil {
			e.t.Fatal(err)
		}
		out[ev.Action+":"+ev.Outcome]++
	}
	return out
}

// files lists the regular files under dir (recursively).
func files(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// blobFiles lists stored objects (not the store's temp files).
func (e *env) blobFiles() []string {
	var out []string
	for _, f := range files(e.t, e.dirs.blobs) {
		if !strings.HasPrefix(f, ".tmp") {
			out = append(out, f)
		}
	}
	return out
}

// eventually retries check until it returns "" or the deadline passes.
func eventually(t *testing.T, within time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noLeaks checks that nothing is held or left behind: no reservations, no
// spool or tus files, and only the blobs of the given number of videos.
func (e *env) noLeaks(t *testing.T, wantBlobVideos int) {
	t.Helper()
	eventually(t, 10*time.Second, func() string {
		if _, held, _ := e.quota.state(""); held != 0 {
			return fmt.Sprintf("%d storage reservations held", held)
		}
		if _, held := e.limit.state(""); held != 0 {
			return fmt.Sprintf("%d upload reservations held", held)
		}
		if f := files(t, e.dirs.spool); len(f) != 0 {
			return fmt.Sprintf("spool files left: %v", f)
		}
		if f := files(t, e.dirs.tus); len(f) != 0 {
			return fmt.Sprintf("tus files left: %v", f)
		}
		dirs := map[string]bool{}
		for _, f := range e.blobFiles() {
			dirs[filepath.Dir(f)] = true
		}
		if len(dirs) != wantBlobVideos {
			return fmt.Sprintf("blobs of %d videos, want %d: %v", len(dirs), wantBlobVideos, e.blobFiles())
		}
		return ""
	})
}
