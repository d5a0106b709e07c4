package storage_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/authn/authntest"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
	"github.com/reel-video/reel/internal/storage"
)

const (
	serviceKey   = "0123456789abcdef0123456789abcdef-test"
	defaultQuota = 1000
	outboxTable  = "storage_outbox"
)

// clock is a settable clock shared by a service and its test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is one implementation of storage.Quota under test, with the
// service behind it (for what only the service does: the sweep, the clock).
type harness struct {
	q     storage.Quota
	svc   *storage.Service
	db    *sqldb.DB
	ob    *outbox.Outbox
	clock *clock
	// srv is the internal-route server behind a client (nil in process).
	srv *httptest.Server
	// drop, when positive, makes the server handle the next requests but
	// answer 503, as if the answer was lost on the way back.
	drop atomic.Int64
}

// newService opens a service on db with its outbox table, which it returns.
func newService(t *testing.T, db *sqldb.DB) (*storage.Service, *clock, *outbox.Outbox) {
	t.Helper()
	if err := sqldb.Migrate(t.Context(), db, outbox.Migrations(outboxTable, db.Dialect), outbox.VersionTable(outboxTable)); err != nil {
		t.Fatal(err)
	}
	ob := outbox.New(db, outboxTable)
	svc := storage.New(db, ob, storage.Config{DefaultQuota: defaultQuota}, obs.Discard())
	c := &clock{t: time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)}
	svc.SetClock(c.Now)
	return svc, c, ob
}

// implementations runs fn against the service in process and against the
// HTTP client talking to the service's internal routes, on both engines.
func implementations(t *testing.T, fn func(t *testing.T, h *harness)) {
	t.Helper()
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		svc, c, ob := newService(t, db)
		t.Run("service", func(t *testing.T) {
			fn(t, &harness{q: svc, svc: svc, db: db, ob: ob, clock: c})
		})
		t.Run("client", func(t *testing.T) {
			h := &harness{svc: svc, db: db, ob: ob, clock: c}
			keys, err := authn.NewServiceKeys(serviceKey, "videos")
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			storage.NewHandler(svc, authntest.New(t).Verifier(), &authntest.Directory{}).InternalRoutes(mux, keys)
			inner := httpx.Wrap(mux, httpx.MiddlewareConfig{Logger: obs.Discard()})
			h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if h.drop.Add(-1) >= 0 {
					inner.ServeHTTP(httptest.NewRecorder(), r)
					http.Error(w, "lost", http.StatusServiceUnavailable)
					return
				}
				inner.ServeHTTP(w, r)
			}))
			t.Cleanup(h.srv.Close)
			h.q = storage.NewClient(h.srv.URL, keys, nil)
			fn(t, h)
		})
	}, storage.Migrations(), storage.MigrationTable)
}

func (h *harness) usage(t *testing.T, user string) storage.Usage {
	t.Helper()
	u, err := h.q.Usage(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (h *harness) wantUsage(t *testing.T, user string, used, reserved int64) {
	t.Helper()
	u := h.usage(t, user)
	if u.UsedBytes != used || u.ReservedBytes != reserved {
		t.Fatalf("usage = %+v, want used %d reserved %d", u, used, reserved)
	}
	if u.QuotaBytes >= 0 && u.AvailableBytes != max(0, u.QuotaBytes-used-reserved) {
		t.Fatalf("available = %d, want %d", u.AvailableBytes, u.QuotaBytes-used-reserved)
	}
}

func (h *harness) reserve(t *testing.T, user string, n int64) storage.Reservation {
	t.Helper()
	r, err := h.q.Reserve(t.Context(), user, n, time.Hour)
	if err != nil {
		t.Fatalf("reserve %d: %v", n, err)
	}
	if r.ID == "" || r.UserID != user || r.Bytes != n {
		t.Fatalf("reservation %+v", r)
	}
	return r
}

// events counts the outbox events with an action for user.
func events(t *testing.T, ob *outbox.Outbox, db *sqldb.DB, action, user string) int {
	t.Helper()
	ob.Wait() // events of reads are written after the answer
	var n int
	err := db.R.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM `+outboxTable+` WHERE payload LIKE $1 AND payload LIKE $2`,
		`%"action":"`+action+`"%`, `%`+user+`%`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestReserveCommit(t *testing.T) {
	implementations(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		user := authntest.NewUserID()
		h.wantUsage(t, user, 0, 0)
		if u := h.usage(t, user); u.QuotaBytes != defaultQuota || u.AvailableBytes != defaultQuota {
			t.Fatalf("fresh user: %+v", u)
		}
		r := h.reserve(t, user, 600)
		h.wantUsage(t, user, 0, 600)
		// The real size is smaller than declared: recorded exactly.
		if err := h.q.Commit(ctx, r.ID, 550, "video-1"); err != nil {
			t.Fatal(err)
		}
		h.wantUsage(t, user, 550, 0)
		// A repeated commit (a retry) changes nothing.
		if err := h.q.Commit(ctx, r.ID, 550, "video-1"); err != nil {
			t.Fatalf("repeated commit: %v", err)
		}
		h.wantUsage(t, user, 550, 0)
		if err := h.q.Commit(ctx, r.ID, 551, "video-1"); !errors.Is(err, storage.ErrReservationSettled) {
			t.Fatalf("commit with other values: %v", err)
		}
		// Releasing a committed reservation (a deferred cleanup) is a no-op.
		if err := h.q.Release(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		h.wantUsage(t, user, 550, 0)

		// 450 left: 451 does not fit, 450 does.
		_, err := h.q.Reserve(ctx, user, 451, time.Hour)
		if !errors.Is(err, storage.ErrQuotaExceeded) || errs.KindOf(err) != errs.TooLarge {
			t.Fatalf("over quota: %v", err)
		}
		if e, _ := errs.As(err); e.Code != "quota_exceeded" || !strings.Contains(e.Msg, "450") {
			t.Fatalf("over quota error: %+v", e)
		}
		if n := events(t, h.ob, h.db, "QUOTA_EXCEEDED", user); n != 1 {
			t.Fatalf("%d QUOTA_EXCEEDED events", n)
		}
		h.wantUsage(t, user, 550, 0)
		r2 := h.reserve(t, user, 450)
		if _, err := h.q.Reserve(ctx, user, 1, time.Hour); !errors.Is(err, storage.ErrQuotaExceeded) {
			t.Fatalf("full: %v", err)
		}
		// A zero-byte reservation always fits.
		h.reserve(t, user, 0)
		if err := h.q.Commit(ctx, r2.ID, 450, "video-2"); err != nil {
			t.Fatal(err)
		}
		h.wantUsage(t, user, 1000, 0)

		if err := h.q.Commit(ctx, "0195a3c4-0000-7000-8000-000000000000", 1, "x"); !errors.Is(err, storage.ErrReservationNotFound) {
			t.Fatalf("unknown reservation: %v", err)
		}
	})
}

func TestCommitMoreThanReserved(t *testing.T) {
	implementations(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		user := authntest.NewUserID()
		r := h.reserve(t, user, 500)
		// More than reserved, but the excess fits.
		if err := h.q.Commit(ctx, r.ID, 700, "a"); err != nil {
			t.Fatal(err)
		}
		h.wantUsage(t, user, 700, 0)
		r = h.reserve(t, user, 200)
		// The excess does not fit: refused, the reservation stays held.
		err := h.q.Commit(ctx, r.ID, 301, "b")
		if !errors.Is(err, storage.ErrQuotaExceeded) {
			t.Fatalf("commit over quota: %v", err)
		}
		h.wantUsage(t, user, 700, 200)
		if err := h.q.Release(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		h.wantUsage(t, user, 700, 0)
	})
}

func TestRelease(t *testing.T) {
	implementations(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		user := authntest.NewUserID()
		r := h.reserve(t, user, 300)
		for range 2 { // idempotent
			if err := h.q.Release(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
			h.wantUsage(t, user, 0, 0)
		}
		if err := h.q.Commit(ctx, r.ID, 300, "v"); !errors.Is(err, storage.ErrReservationSettled) {
			t.Fatalf("commit after release: %v", err)
		}
		h.wantUsage(t, user, 0, 0)
		for _, id := range []string{"0195a3c4-0000-7000-8000-000000000000", "not-a-uuid"} {
			if err := h.q.Release(ctx, id); err != nil {
				t.Fatalf("release unknown %s: %v", id, err)
			}
		}
	})
}

func TestFreeAndCharge(t *testing.T) {
	implementations(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		user := authntest.NewUserID()
		r := h.reserve(t, user, 900)
		if err := h.q.Commit(ctx, r.ID, 900, "vid/1"); err != nil {
			t.Fatal(err)
		}
		// A poster after admission: charged even past the quota.
		if err := h.q.Charge(ctx, user, "vid/1", 150); err != nil {
			t.Fatal(err)
		}
		h.wantUsage(t, user, 1050, 0)
		if u := h.usage(t, user); u.AvailableBytes != 0 {
			t.Fatalf("over quota but available %d", u.AvailableBytes)
		}
		// Over the quota nothing is admitted, not even an empty file.
		for _, n := range []int64{0, 1} {
			if _, err := h.q.Reserve(ctx, user, n, time.Hour); !errors.Is(err, storage.ErrQuotaExceeded) {
				t.Fatalf("reserve %d over quota: %v", n, err)
			}
		}
		// Another object of another user is untouched by Free.
		other := authntest.NewUserID()
		if err := h.q.Charge(ctx, other, "vid/1", 10); err != nil {
			t.Fatal(err)
		}
		// Free releases everything stored under the object, once.
		n, err := h.q.Free(ctx, user, "vid/1")
		if err != nil || n != 1050 {
			t.Fatalf("free: %d %v", n, err)
		}
		h.wantUsage(t, user, 0, 0)
		for _, obj := range []string{"vid/1", "never-stored"} {
			if n, err := h.q.Free(ctx, user, obj); err != nil || n != 0 {
				t.Fatalf("free %s again: %d %v", obj, n, err)
			}
		}
		h.wantUsage(t, user, 0, 0)
		h.wantUsage(t, other, 10, 0)
		// Restoring from the trash: admitted again like an upload.
		r = h.reserve(t, user, 1000)
		if err := h.q.Commit(ctx, r.ID, 1000, "vid/1"); err != nil {
			t.Fatal(err)
		}
		h.wantUsage(t, user, 1000, 0)
	})
}

func TestQuotaOverride(t *testing.T) {
	implementations(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		user := authntest.NewUserID()
		if err := h.q.SetQuota(ctx, user, storage.Unlimited); err != nil {
			t.Fatal(err)
		}
		if u := h.usage(t, user); u.QuotaBytes != -1 || u.AvailableBytes != -1 {
			t.Fatalf("unlimited: %+v", u)
		}
		r := h.reserve(t, user, 1<<40)
		if err := h.q.Commit(ctx, r.ID, 1<<40, "big"); err != nil {
			t.Fatal(err)
		}
		// Lowering below what is stored keeps the bytes but admits nothing.
		if err := h.q.SetQuota(ctx, user, 2000); err != nil {
			t.Fatal(err)
		}
		if u := h.usage(t, user); u.QuotaBytes != 2000 || u.AvailableBytes != 0 || u.UsedBytes != 1<<40 {
			t.Fatalf("lowered: %+v", u)
		}
		if _, err := h.q.Reserve(ctx, user, 1, time.Hour); !errors.Is(err, storage.ErrQuotaExceeded) {
			t.Fatalf("reserve: %v", err)
		}
		if _, err := h.q.Free(ctx, user, "big"); err != nil {
			t.Fatal(err)
		}
		h.reserve(t, user, 2000)
		// Another user keeps the default.
		if u := h.usage(t, authntest.NewUserID()); u.QuotaBytes != defaultQuota {
			t.Fatalf("default: %+v", u)
		}
		if err := h.q.SetQuota(ctx, user, -2); !errors.Is(err, storage.ErrInvalid) {
			t.Fatalf("quota -2: %v", err)
		}
	})
}

func TestInvalidArguments(t *testing.T) {
	implementations(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		user := authntest.NewUserID()
		for _, bad := range []string{"", "nope", strings.ToUpper(user)} {
			if _, err := h.q.Reserve(ctx, bad, 1, time.Hour); !errors.Is(err, storage.ErrInvalidUserID) {
				t.Fatalf("user %q: %v", bad, err)
			}
		}
		if _, err := h.q.Reserve(ctx, user, -1, time.Hour); !errors.Is(err, storage.ErrInvalid) {
			t.Fatalf("negative bytes: %v", err)
		}
		if _, err := h.q.Reserve(ctx, user, 1, 0); !errors.Is(err, storage.ErrInvalid) {
			t.Fatalf("zero ttl: %v", err)
		}
		r := h.reserve(t, user, 1)
		if err := h.q.Commit(ctx, r.ID, 1, ""); !errors.Is(err, storage.ErrInvalid) {
			t.Fatalf("empty object: %v", err)
		}
		if err := h.q.Charge(ctx, user, "o", -5); !errors.Is(err, storage.ErrInvalid) {
			t.Fatalf("negative charge: %v", err)
		}
		h.wantUsage(t, user, 0, 1)
	})
}

// TestReserveRace: 50 goroutines reserve at once against one quota; the
// quota is never overshot by a single byte, and every refusal was right.
func TestReserveRace(t *testing.T) {
	implementations(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		user := authntest.NewUserID()
		// 30 bytes already stored, so 970 are left for the racers.
		r := h.reserve(t, user, 30)
		if err := h.q.Commit(ctx, r.ID, 30, "seed"); err != nil {
			t.Fatal(err)
		}
		const racers = 50
		var (
			wg       sync.WaitGroup
			start    = make(chan struct{})
			granted  atomic.Int64
			ok, no   atomic.Int64
			failures = make(chan error, racers)
		)
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				n := int64(37 + i%5) // 37..41 bytes: no two orders grant the same set
				_, err := h.q.Reserve(ctx, user, n, time.Hour)
				switch {
				case err == nil:
					granted.Add(n)
					ok.Add(1)
				case errors.Is(err, storage.ErrQuotaExceeded):
					no.Add(1)
				default:
					failures <- err
				}
			}()
		}
		close(start)
		wg.Wait()
		close(failures)
		for err := range failures {
			t.Fatalf("racer failed: %v", err)
		}
		u := h.usage(t, user)
		if u.ReservedBytes != granted.Load() {
			t.Fatalf("reserved %d, but granted %d", u.ReservedBytes, granted.Load())
		}
		if u.UsedBytes+u.ReservedBytes > defaultQuota {
			t.Fatalf("quota overshot: %+v", u)
		}
		// Refusals happened only because the quota was (nearly) full:
		// what is left is smaller than the largest request.
		if u.AvailableBytes >= 41 {
			t.Fatalf("refused while %d bytes were available", u.AvailableBytes)
		}
		if ok.Load()+no.Load() != racers || no.Load() == 0 {
			t.Fatalf("%d granted, %d refused", ok.Load(), no.Load())
		}
		t.Logf("%d granted (%d bytes), %d refused", ok.Load(), granted.Load(), no.Load())
	})
}

func TestSweepExpiry(t *testing.T) {
	implementations(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		user := authntest.NewUserID()
		short, err := h.q.Reserve(ctx, user, 400, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		long, err := h.q.Reserve(ctx, user, 300, 3*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		late, err := h.q.Reserve(ctx, user, 250, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		h.wantUsage(t, user, 0, 950)
		h.clock.Advance(2 * time.Minute)
		if err := h.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		// The two short ones are gone, the long one is held.
		h.wantUsage(t, user, 0, 300)
		if err := h.svc.Sweep(ctx); err != nil { // nothing twice
			t.Fatal(err)
		}
		h.wantUsage(t, user, 0, 300)
		// Releasing an expired reservation changes nothing.
		if err := h.q.Release(ctx, short.ID); err != nil {
			t.Fatal(err)
		}
		h.wantUsage(t, user, 0, 300)
		// A late commit is admitted again while there is room...
		if err := h.q.Commit(ctx, late.ID, 250, "late"); err != nil {
			t.Fatalf("late commit: %v", err)
		}
		h.wantUsage(t, user, 250, 300)
		// ...and refused when there is not.
		r := h.reserve(t, user, 400)
		if err := h.q.Commit(ctx, short.ID, 400, "late-2"); !errors.Is(err, storage.ErrQuotaExceeded) {
			t.Fatalf("late commit without room: %v", err)
		}
		h.wantUsage(t, user, 250, 700)
		if err := h.q.Commit(ctx, long.ID, 300, "long"); err != nil {
			t.Fatal(err)
		}
		if err := h.q.Commit(ctx, r.ID, 400, "r"); err != nil {
			t.Fatal(err)
		}
		h.wantUsage(t, user, 950, 0)
		// Settled reservations are forgotten after a day.
		h.clock.Advance(25 * time.Hour)
		if err := h.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if err := h.q.Commit(ctx, long.ID, 300, "long"); !errors.Is(err, storage.ErrReservationNotFound) {
			t.Fatalf("forgotten reservation: %v", err)
		}
		h.wantUsage(t, user, 950, 0)
	})
}

// TestLeases: a reservation taken as a lease lives while its holder
// renews it and is released a lease after the holder stops (it died), so
// the user can upload again within minutes, not after the upload's TTL.
func TestLeases(t *testing.T) {
	implementations(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		const lease = 2 * time.Minute
		user := authntest.NewUserID()
		alive, err := h.q.Reserve(ctx, user, 400, lease)
		if err != nil {
			t.Fatal(err)
		}
		dead, err := h.q.Reserve(ctx, user, 600, lease)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.q.Reserve(ctx, user, 500, lease); !errors.Is(err, storage.ErrQuotaExceeded) {
			t.Fatalf("reserve over the quota: %v", err)
		}
		for range 8 {
			h.clock.Advance(30 * time.Second)
			if err := h.q.Renew(ctx, alive.ID, lease); err != nil {
				t.Fatal(err)
			}
			if err := h.svc.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
		}
		h.wantUsage(t, user, 0, 400)
		h.reserve(t, user, 500)
		if err := h.q.Renew(ctx, dead.ID, lease); !errors.Is(err, storage.ErrReservationSettled) {
			t.Fatalf("renew a lapsed lease: %v", err)
		}
		if err := h.q.Renew(ctx, authntest.NewUserID(), lease); !errors.Is(err, storage.ErrReservationNotFound) {
			t.Fatalf("renew an unknown reservation: %v", err)
		}
		if err := h.q.Renew(ctx, alive.ID, 0); !errors.Is(err, storage.ErrInvalid) {
			t.Fatalf("renew for 0: %v", err)
		}
		if err := h.q.Commit(ctx, alive.ID, 400, "alive"); err != nil {
			t.Fatal(err)
		}
		h.wantUsage(t, user, 400, 500)
	})
}

// TestClientRetries: an answer lost on the way back makes the client try
// again, and the idempotent calls land once.
func TestClientRetries(t *testing.T) {
	implementations(t, func(t *testing.T, h *harness) {
		if h.srv == nil {
			t.Skip("in process: nothing to lose")
		}
		ctx := t.Context()
		user := authntest.NewUserID()
		h.drop.Store(1)
		r := h.reserve(t, user, 100)
		h.wantUsage(t, user, 0, 100)
		h.drop.Store(1)
		if err := h.q.Commit(ctx, r.ID, 90, "o"); err != nil {
			t.Fatal(err)
		}
		h.wantUsage(t, user, 90, 0)
		h.drop.Store(1)
		if n, err := h.q.Free(ctx, user, "o"); err != nil || n != 0 {
			// The first, lost attempt freed the bytes; the retry frees 0.
			t.Fatalf("free: %d %v", n, err)
		}
		h.wantUsage(t, user, 0, 0)
		// Charge is not idempotent, so it is not retried: the caller sees
		// the failure although the bytes were charged.
		h.drop.Store(1)
		if err := h.q.Charge(ctx, user, "p", 5); !errors.Is(err, errs.ErrUnavailable) {
			t.Fatalf("charge with lost answer: %v", err)
		}
		h.wantUsage(t, user, 5, 0)
		// Down for longer than the retries: 503.
		h.drop.Store(10)
		if _, err := h.q.Usage(ctx, user); !errors.Is(err, errs.ErrUnavailable) {
			t.Fatalf("down: %v", err)
		}
		// A reserve whose every answer is lost names the hold it made, for
		// the caller to release; a refusal names none.
		lost, err := h.q.Reserve(ctx, user, 7, time.Hour)
		if !errors.Is(err, errs.ErrUnavailable) || lost.ID == "" {
			t.Fatalf("reserve, answers lost: %+v %v", lost, err)
		}
		h.drop.Store(0)
		h.wantUsage(t, user, 5, 7)
		if err := h.q.Release(ctx, lost.ID); err != nil {
			t.Fatal(err)
		}
		h.wantUsage(t, user, 5, 0)
		if r, err := h.q.Reserve(ctx, user, defaultQuota, time.Hour); !errors.Is(err, storage.ErrQuotaExceeded) || r.ID != "" {
			t.Fatalf("refused: %+v %v", r, err)
		}
	})
}

func TestClientUnreachable(t *testing.T) {
	keys, err := authn.NewServiceKeys(serviceKey, "videos")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := storage.NewClient(url, keys, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = c.Reserve(ctx, authntest.NewUserID(), 1, time.Hour)
	if !errors.Is(err, errs.ErrUnavailable) || httpx.StatusOf(errs.KindOf(err)) != http.StatusServiceUnavailable {
		t.Fatalf("unreachable: %v", err)
	}
	// A wrong service key is a misconfiguration, not the user's fault: 500.
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		svc, _, _ := newService(t, db)
		mux := http.NewServeMux()
		good, _ := authn.NewServiceKeys(serviceKey, "storage")
		storage.NewHandler(svc, authntest.New(t).Verifier(), &authntest.Directory{}).InternalRoutes(mux, good)
		srv := httptest.NewServer(httpx.Wrap(mux, httpx.MiddlewareConfig{Logger: obs.Discard()}))
		defer srv.Close()
		bad, _ := authn.NewServiceKeys(strings.Repeat("x", 32), "videos")
		_, err := storage.NewClient(srv.URL, bad, nil).Usage(t.Context(), authntest.NewUserID())
		if err == nil || errs.KindOf(err) != errs.Internal {
			t.Fatalf("bad key: %v", err)
		}
	}, storage.Migrations(), storage.MigrationTable)
}
