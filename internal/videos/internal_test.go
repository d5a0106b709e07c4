package videos

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	xslog "golang.org/x/exp/slog"

	"github.com/reel-video/reel/internal/media"
	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/platform/reserve"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

// stubs for tests that do not upload.
type stubQuota struct {
	mu    sync.Mutex
	freed []string
}

func (*stubQuota) Reserve(_ context.Context, user string, n int64, _ time.Duration) (reserve.Hold, error) {
	return reserve.Hold{ID: uuid.NewString(), UserID: user, Bytes: n}, nil
}
func (*stubQuota) Commit(context.Context, string, int64, string) error { return nil }
func (*stubQuota) Release(context.Context, string) error               { return nil }
func (*stubQuota) Renew(context.Context, string, time.Duration) error  { return nil }
func (q *stubQuota) Free(_ context.Context, _, object string) (int64, error) {
	q.mu.Lock()
	q.freed = append(q.freed, object)
	q.mu.Unlock()
	return 0, nil
}

type stubLimit struct{}

func (stubLimit) ReserveUpload(_ context.Context, user string, n int64, _ time.Duration) (reserve.Hold, error) {
	return reserve.Hold{ID: uuid.NewString(), UserID: user, Bytes: n}, nil
}
func (stubLimit) CommitUpload(context.Context, string, int64) error        { return nil }
func (stubLimit) ReleaseUpload(context.Context, string) error              { return nil }
func (stubLimit) RenewUpload(context.Context, string, time.Duration) error { return nil }

type stubEgress struct{}

func (stubEgress) Allowance(context.Context, string) (int64, error) { return -1, nil }
func (stubEgress) Add(string, int64)                                {}

type stubProber struct{}

func (stubProber) Probe(context.Context, string) (media.Info, error) {
	return media.Info{}, media.ErrNotVideo
}
func (stubProber) Poster(context.Context, string, media.Info) (string, error) {
	return "", media.ErrNoPoster
}

func testService(t *testing.T, db *sqldb.DB) (*Service, *stubQuota, blob.Store) {
	t.Helper()
	ctx := context.Background()
	if err := sqldb.Migrate(ctx, db, outbox.Migrations("videos_outbox", db.Dialect), outbox.VersionTable("videos_outbox")); err != nil {
		t.Fatal(err)
	}
	if err := MigrateQueue(ctx, db); err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	q := &stubQuota{}
	svc, err := New(ctx, db, outbox.New(db, "videos_outbox"), Deps{
		Blobs: blobs, Prober: stubProber{}, Quota: q, Limit: stubLimit{}, Egress: stubEgress{},
	}, Config{MaxUploadSize: 1 << 20, SpoolDir: t.TempDir()}, obs.Discard())
	if err != nil {
		t.Fatal(err)
	}
	return svc, q, blobs
}

func readyRecord(owner string, created time.Time) record {
	id := uuid.Must(uuid.NewV7()).String()
	return record{
		Video: Video{ID: id, OwnerID: owner, Title: "v " + id[:8], Status: StatusReady, SizeBytes: 10, ContentType: "video/mp4",
			CreatedAt: created.UTC().Truncate(time.Microsecond)},
		VideoKey: blobKey(id, "video.mp4"), QuotaState: quotaCharged, QuotaAt: micros(created), UpdatedAt: micros(created),
	}
}

// Pages stay consistent while videos are added: every video that existed
// when paging began is seen exactly once, in order, and new ones (which are
// newer) never push old ones onto a page already read.
func TestFeedPaginationWithConcurrentInserts(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		svc, _, _ := testService(t, db)
		ctx := context.Background()
		owner := uuid.NewString()
		base := time.Now().Add(-time.Hour)
		initial := map[string]bool{}
		for i := 0; i < 60; i++ {
			// Pairs share a timestamp, so the id must break ties.
			r := readyRecord(owner, base.Add(time.Duration(i/2)*time.Millisecond))
			if err := svc.store.insertVideo(ctx, db.W, r); err != nil {
				t.Fatal(err)
			}
			initial[r.ID] = true
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := svc.store.insertVideo(ctx, db.W, readyRecord(owner, time.Now())); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		seen := map[string]bool{}
		var last *Video
		cursor := ""
		for pages := 0; ; pages++ {
			req, err := page.Parse(cursor, "7", defaultPage, maxPage)
			if err != nil {
				t.Fatal(err)
			}
			p, err := svc.Feed(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			for i := range p.Items {
				v := p.Items[i]
				if seen[v.ID] {
					t.Fatalf("%s seen twice", v.ID)
				}
				seen[v.ID] = true
				if last != nil && (v.CreatedAt.After(last.CreatedAt) || (v.CreatedAt.Equal(last.CreatedAt) && v.ID > last.ID)) {
					t.Fatalf("out of order: %v after %v", v.ID, last.ID)
				}
				last = &p.Items[i]
			}
			if p.NextCursor == nil {
				break
			}
			cursor = *p.NextCursor
			time.Sleep(2 * time.Millisecond) // let inserts land between pages
		}
		close(stop)
		wg.Wait()
		for id := range initial {
			if !seen[id] {
				t.Fatalf("%s never seen", id)
			}
		}
		// Mine pages the same way.
		req, _ := page.Parse("", "100", defaultPage, maxPage)
		mine, err := svc.store.mine(ctx, owner, req)
		if err != nil || len(mine) < 60 {
			t.Fatalf("mine: %d %v", len(mine), err)
		}
		if _, err := page.Parse("garbage!", "", defaultPage, maxPage); err == nil {
			t.Fatal("a bad cursor parsed")
		}
	}, Migrations(), MigrationTable)
}

// A process that died while finalising an upload leaves a processing row
// and maybe blobs; the maintenance job fails the video, deletes its blobs
// and frees whatever was charged. A restore that died half-way is undone.
func TestMaintainRecoversAbandonedSteps(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		svc, q, blobs := testService(t, db)
		ctx := context.Background()
		now := time.Now()
		svc.SetClock(func() time.Time { return now })
		owner := uuid.NewString()

		stuck := readyRecord(owner, now.Add(-3*time.Hour))
		stuck.Status, stuck.QuotaState = StatusProcessing, quotaCharging
		if err := svc.store.insertVideo(ctx, db.W, stuck); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{stuck.VideoKey, blobKey(stuck.ID, PosterFile)} {
			if _, err := blobs.Put(ctx, key, strings.NewReader("bytes"), 5, "video/mp4"); err != nil {
				t.Fatal(err)
			}
		}
		fresh := readyRecord(owner, now.Add(-time.Minute))
		fresh.Status, fresh.QuotaState = StatusProcessing, quotaCharging
		if err := svc.store.insertVideo(ctx, db.W, fresh); err != nil {
			t.Fatal(err)
		}
		restoring := readyRecord(owner, now.Add(-time.Hour))
		if err := svc.store.insertVideo(ctx, db.W, restoring); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.store.trashOne(ctx, db.W, restoring.ID, micros(now.Add(-time.Hour))); err != nil {
			t.Fatal(err)
		}
		if _, err := db.W.Exec(`UPDATE videos SET quota_state = 'charging', quota_at = $1 WHERE id = $2`, micros(now.Add(-time.Hour)), restoring.ID); err != nil {
			t.Fatal(err)
		}

		if err := svc.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
		got, _ := svc.store.video(ctx, db.R, stuck.ID)
		if got.Status != StatusFailed || got.QuotaState != quotaFree {
			t.Fatalf("stuck upload: %s/%s", got.Status, got.QuotaState)
		}
		for _, key := range []string{stuck.VideoKey, blobKey(stuck.ID, PosterFile)} {
			if _, err := blobs.Stat(ctx, key); err == nil {
				t.Fatalf("blob %s left", key)
			}
		}
		if got, _ := svc.store.video(ctx, db.R, fresh.ID); got.Status != StatusProcessing {
			t.Fatalf("a fresh finalisation was touched: %s", got.Status)
		}
		if got, _ := svc.store.video(ctx, db.R, restoring.ID); got.QuotaState != quotaFree || got.DeletedAt == nil {
			t.Fatalf("abandoned restore: %s %v", got.QuotaState, got.DeletedAt)
		}
		q.mu.Lock()
		freed := strings.Join(q.freed, " ")
		q.mu.Unlock()
		for _, want := range []string{stuck.VideoKey, restoring.VideoKey} {
			if !strings.Contains(freed, want) {
				t.Fatalf("%s not freed: %s", want, freed)
			}
		}
	}, Migrations(), MigrationTable)
}

func TestSigner(t *testing.T) {
	s := &signer{key: []byte("0123456789abcdef0123456789abcdef")}
	now := time.Unix(1_800_000_000, 0)
	video, viewer := uuid.NewString(), uuid.NewString()
	tok := s.token(video, viewer, now.Add(time.Hour))
	if got, _, err := s.verify(tok, video, now); err != nil || got != viewer {
		t.Fatalf("verify: %q %v", got, err)
	}
	if _, _, err := s.verify(tok, uuid.NewString(), now); err != ErrBadSignature {
		t.Fatalf("other video: %v", err)
	}
	if _, _, err := s.verify(tok, video, now.Add(time.Hour)); err != ErrURLExpired {
		t.Fatalf("expired: %v", err)
	}
	other := &signer{key: []byte("another key, another key, anothe")}
	if _, _, err := other.verify(tok, video, now); err != ErrBadSignature {
		t.Fatalf("other key: %v", err)
	}
	for _, bad := range []string{"", ".", "..", "1.2.3", strings.Repeat("a", 300), "x" + tok} {
		if _, _, err := s.verify(bad, video, now); err != ErrBadSignature {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	// The pooled MAC states start from the key each time, also when
	// goroutines share them.
	want := hmac.New(sha256.New, s.key)
	want.Write([]byte(tokenLabel + "\x00" + video + "\x00" + viewer + "\x00" + "1800003600"))
	wantSum := want.Sum(nil)
	var wg sync.WaitGroup
	var bad atomic.Int32
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if !hmac.Equal(s.mac(video, viewer, 1_800_003_600), wantSum) {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d MACs differ from a fresh HMAC's", bad.Load())
	}
}

func TestMediaRange(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"bytes=0-", "bytes=0-9"}, // bounded to one chunk
		{"bytes=95-", "bytes=95-"},
		{"bytes=90-", "bytes=90-"}, // exactly one chunk left
		{"bytes=89-", "bytes=89-98"},
		{"bytes= 89- ", "bytes=89-98"},
		{"bytes=0-50", "bytes=0-50"},
		{"bytes=-50", "bytes=-50"},
		{"bytes=0-,5-", "bytes=0-,5-"},
		{"bytes=100-", "bytes=100-"}, // ServeContent's 416
		{"bytes=-0", "bytes=100-"},   // selects nothing: 416
		{"bytes= - 00", "bytes=100-"},
		{"bytes=-0,-0", "bytes=100-"},
		{"bytes=0-1,-0", "bytes=0-1"},
		{"bytes=-0, 0-", "bytes=0-9"},
		{"Bytes=0-1", "bytes=0-1"}, // the unit is case-insensitive
		{"bytes=abc", "bytes=abc"}, // malformed: ServeContent's 416
		{"items=0-", ""},           // an unknown unit is ignored
		{"0-1", ""},
		// At most 16 ranges: more are ignored (the whole file).
		{"bytes=" + strings.Repeat("0-1,", 15) + "2-3", "bytes=" + strings.Repeat("0-1,", 15) + "2-3"},
		{"bytes=" + strings.Repeat("0-1,", 16) + "2-3", ""},
		{"bytes=" + strings.Repeat("-0,", 16) + "0-1", ""}, // empty ones count too
	} {
		if got := mediaRange(c.in, 100, 10); got != c.want {
			t.Errorf("%q: %q, want %q", c.in, got, c.want)
		}
	}
}

// readerFromWriter records what ReadFrom was handed, and whether the
// header had been flushed by then.
type readerFromWriter struct {
	http.ResponseWriter
	src           io.Reader
	flushed       bool
	flushedBefore bool
}

func (w *readerFromWriter) Flush() { w.flushed = true }

func (w *readerFromWriter) ReadFrom(src io.Reader) (int64, error) {
	w.src, w.flushedBefore = src, w.flushed
	return io.Copy(io.Discard, src)
}

// The media writer keeps the sendfile path: ServeContent's LimitedReader
// over the *os.File reaches the underlying ReadFrom as it is, with its
// limit tightened to the budget, after the header was flushed (so net/http
// does not read the first 512 bytes of the file itself).
func TestMeteredWriterKeepsSendfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, make([]byte, 10000), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	under := &readerFromWriter{ResponseWriter: httptest.NewRecorder()}
	m := &meteredWriter{ResponseWriter: under, r: httptest.NewRequest("GET", "/", nil), budget: 3000}
	lr := &io.LimitedReader{R: f, N: 8000}
	n, err := io.Copy(m, lr)
	if err != nil || n != 3000 || m.body != 3000 {
		t.Fatalf("copied %d (%d counted), %v", n, m.body, err)
	}
	got, ok := under.src.(*io.LimitedReader)
	if !ok || got != lr || got.R != f {
		t.Fatalf("ReadFrom got %T, not the LimitedReader over the file", under.src)
	}
	if !under.flushedBefore {
		t.Fatal("the header was not flushed before the file was handed over")
	}
	if m.Unwrap() != under {
		t.Fatal("Unwrap does not reach the underlying writer (http.ResponseController needs it)")
	}
}

// deadlineWriter records the write deadline it is given.
type deadlineWriter struct {
	http.ResponseWriter
	deadline time.Time
}

func (d *deadlineWriter) SetWriteDeadline(t time.Time) error {
	d.deadline = t
	return nil
}

// tusd's write deadline is stretched so the PATCH that finalises a large
// upload can still answer.
func TestTusWriteDeadlineStretched(t *testing.T) {
	under := &deadlineWriter{ResponseWriter: httptest.NewRecorder()}
	p := &problemWriter{ResponseWriter: under, r: httptest.NewRequest("PATCH", "/", nil)}
	at := time.Now().Add(2 * time.Minute)
	if err := http.NewResponseController(p).SetWriteDeadline(at); err != nil {
		t.Fatal(err)
	}
	if !under.deadline.Equal(at.Add(finishSlack)) {
		t.Fatalf("deadline %v, want %v", under.deadline, at.Add(finishSlack))
	}
}

// A start sweeps the spool files and posters a crashed process left
// (older than a day), and leaves fresh ones and anything else alone.
func TestStartRemovesStaleSpool(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		svc, _, _ := testService(t, db)
		dir := svc.cfg.SpoolDir
		old := time.Now().Add(-25 * time.Hour)
		files := map[string]bool{ // name: kept
			"upload-1": false, media.PosterPrefix + "1.jpg": false,
			"upload-2": true, media.PosterPrefix + "2.jpg": true, "other": true,
		}
		for name, kept := range files {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			if !kept || name == "other" {
				if err := os.Chtimes(p, old, old); err != nil {
					t.Fatal(err)
				}
			}
		}
		svc.removeStaleSpool()
		for name, kept := range files {
			_, err := os.Stat(filepath.Join(dir, name))
			if exists := err == nil; exists != kept {
				t.Errorf("%s: exists %v, want %v", name, exists, kept)
			}
		}
	}, Migrations(), MigrationTable)
}

// Background clean-ups are bounded: past maxRetrying, a failed clean-up
// is left to the backstops instead of starting one more goroutine.
func TestRetryCleanupIsBounded(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		svc, _, _ := testService(t, db)
		var ran atomic.Int64
		for range maxRetrying + 5 {
			svc.retryCleanup("test", nil, func(context.Context) error { ran.Add(1); return nil })
		}
		if n := svc.retrying.Load(); n != maxRetrying {
			t.Fatalf("%d retrying, want %d", n, maxRetrying)
		}
		deadline := time.Now().Add(20 * time.Second)
		for svc.retrying.Load() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d still retrying", svc.retrying.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if ran.Load() != maxRetrying {
			t.Fatalf("%d clean-ups ran, want %d", ran.Load(), maxRetrying)
		}
	}, Migrations(), MigrationTable)
}

// A tus PATCH body cut short is a client going away, logged at info
// (dropped at the default warn level); other tusd errors stay errors.
func TestTusLogBodyReadError(t *testing.T) {
	var buf strings.Builder
	h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})
	l := xslog.New(tusLog{h: h})
	l.Error("BodyReadError", "error", "ERR_UNEXPECTED_EOF")
	if buf.Len() != 0 {
		t.Fatalf("a cut-short body was logged at warn level: %s", buf.String())
	}
	l.Error("InternalServerError", "error", "disk full")
	if !strings.Contains(buf.String(), `"level":"ERROR"`) || !strings.Contains(buf.String(), "tus: InternalServerError") {
		t.Fatalf("other errors must stay errors: %s", buf.String())
	}
	buf.Reset()
	info := xslog.New(tusLog{h: slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})})
	info.Error("BodyReadError", "error", "ERR_UNEXPECTED_EOF")
	if !strings.Contains(buf.String(), `"level":"INFO"`) {
		t.Fatalf("at info level the cut-short body is logged as info: %s", buf.String())
	}
}

// The statements reel runs on River's table read it through the indexes
// made for them, on both engines, not by a scan of every job River keeps
// (completed ones included): the fair-queueing count at each upload, the
// cancel of a trashed video's jobs at each delete.
func TestQueueStatementsUseTheirIndexes(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		s, _, _ := testService(t, db)
		for _, c := range []struct {
			name, query, index string
			args               []any
		}{
			{"fair count", fairCountSQL, "videos_river_job_waiting_owner", append([]any{"owner"}, fairKinds...)},
			{"cancel", s.cancelJobsSQL(2), "videos_river_job_unfinished_video", []any{"2026-12-03T00:00:00Z", "v1", "v2"}},
		} {
			if plan := queryPlan(t, db, c.query, c.args...); !strings.Contains(plan, c.index) {
				t.Errorf("the %s's plan does not use %s:\n%s", c.name, c.index, plan)
			}
		}
	}, Migrations(), MigrationTable)
}

// queryPlan is the engine's plan of query, which it does not run.
func queryPlan(t *testing.T, db *sqldb.DB, query string, args ...any) string {
	t.Helper()
	ctx := context.Background()
	var plan strings.Builder
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		explain := "EXPLAIN QUERY PLAN "
		if db.Dialect == sqldb.Postgres {
			// An empty table is cheaper to scan: ask which index
			// applies, as it would on a full one.
			if _, err := tx.ExecContext(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
				return err
			}
			explain = "EXPLAIN "
		}
		rows, err := tx.QueryContext(ctx, explain+query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			for i := range vals {
				vals[i] = new(any)
			}
			if err := rows.Scan(vals...); err != nil {
				return err
			}
			for _, v := range vals {
				fmt.Fprint(&plan, *(v.(*any)), " ")
			}
			plan.WriteString("\n")
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return plan.String()
}
