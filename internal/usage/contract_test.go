package usage_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
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
	"github.com/reel-video/reel/internal/usage"
)

const (
	serviceKey    = "0123456789abcdef0123456789abcdef-test"
	defaultUpload = 1000
	defaultEgress = 5000
	outboxTable   = "usage_outbox"
	noon          = 12 * time.Hour
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

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// day0 is the first day of the tests' clock.
var day0 = time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC)

// harness is one implementation of usage.Meter under test.
type harness struct {
	m     usage.Meter
	svc   *usage.Service
	db    *sqldb.DB
	ob    *outbox.Outbox
	clock *clock
	srv   *httptest.Server
	// drop, when positive, makes the server handle the next requests but
	// answer 503, as if the answer was lost.
	drop atomic.Int64
}

func newService(t *testing.T, db *sqldb.DB) (*usage.Service, *clock, *outbox.Outbox) {
	t.Helper()
	if err := sqldb.Migrate(t.Context(), db, outbox.Migrations(outboxTable, db.Dialect), outbox.VersionTable(outboxTable)); err != nil {
		t.Fatal(err)
	}
	ob := outbox.New(db, outboxTable)
	svc := usage.New(db, ob, usage.Config{DailyUpload: defaultUpload, DailyEgress: defaultEgress}, obs.Discard())
	c := &clock{t: day0.Add(noon)}
	svc.SetClock(c.Now)
	return svc, c, ob
}

// implementations runs fn against the service in process and against the
// client over the internal routes, on both engines.
func implementations(t *testing.T, fn func(t *testing.T, h *harness)) {
	t.Helper()
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		svc, c, ob := newService(t, db)
		t.Run("service", func(t *testing.T) {
			c.Set(day0.Add(noon))
			fn(t, &harness{m: svc, svc: svc, db: db, ob: ob, clock: c})
		})
		t.Run("client", func(t *testing.T) {
			c.Set(day0.Add(noon))
			h := &harness{svc: svc, db: db, ob: ob, clock: c}
			keys, err := authn.NewServiceKeys(serviceKey, "videos")
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			usage.NewHandler(svc, authntest.New(t).Verifier(), &authntest.Directory{}).InternalRoutes(mux, keys)
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
			h.m = usage.NewClient(h.srv.URL, keys, nil)
			fn(t, h)
		})
	}, usage.Migrations(), usage.MigrationTable)
}

func (h *harness) today(t *testing.T, user string) usage.Status {
	t.Helper()
	st, err := h.m.Today(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (h *harness) wantUpload(t *testing.T, user string, used, reserved int64) {
	t.Helper()
	st := h.today(t, user)
	if st.Upload.UsedBytes != used || st.Upload.ReservedBytes != reserved {
		t.Fatalf("upload on %s = %+v, want used %d reserved %d", st.Day, st.Upload, used, reserved)
	}
}

func (h *harness) reserve(t *testing.T, user string, n int64) usage.Reservation {
	t.Helper()
	r, err := h.m.ReserveUpload(t.Context(), user, n, time.Hour)
	if err != nil {
		t.Fatalf("reserve %d: %v", n, err)
	}
	if r.ID == "" || r.UserID != user || r.Bytes != n || r.Day != usage.Day(h.clock.Now()) {
		t.Fatalf("reservation %+v", r)
	}
	return r
}

// wantLimit checks a daily limit refusal and its Retry-After.
func wantLimit(t *testing.T, err error, retryAfter time.Duration) {
	t.Helper()
	if !errors.Is(err, usage.ErrDailyLimit) || errs.KindOf(err) != errs.RateLimited {
		t.Fatalf("want daily_limit_reached, got %v", err)
	}
	e, _ := errs.As(err)
	// Over HTTP Retry-After has whole seconds, rounded up.
	if e.RetryAfter < retryAfter-time.Second || e.RetryAfter > retryAfter+time.Second {
		t.Fatalf("retry after %s, want %s", e.RetryAfter, retryAfter)
	}
}

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

func TestUploadReserveCommit(t *testing.T) {
	implementations(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		user := authntest.NewUserID()
		st := h.today(t, user)
		if st.Day != "2025-03-14" || !st.ResetsAt.Equal(day0.AddDate(0, 0, 1)) || st.Upload.LimitBytes != defaultUpload || st.Egress.LimitBytes != defaultEgress {
			t.Fatalf("fresh: %+v", st)
		}
		r := h.reserve(t, user, 600)
		h.wantUpload(t, user, 0, 600)
		if err := h.m.CommitUpload(ctx, r.ID, 580); err != nil {
			t.Fatal(err)
		}
		h.wantUpload(t, user, 580, 0)
		if err := h.m.CommitUpload(ctx, r.ID, 580); err != nil {
			t.Fatalf("repeated commit: %v", err)
		}
		if err := h.m.CommitUpload(ctx, r.ID, 1); !errors.Is(err, usage.ErrReservationSettled) {
			t.Fatalf("commit with another size: %v", err)
		}
		if err := h.m.ReleaseUpload(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		h.wantUpload(t, user, 580, 0)

		// 420 left today; at noon the counters reset in 12 hours.
		_, err := h.m.ReserveUpload(ctx, user, 421, time.Hour)
		wantLimit(t, err, noon)
		if n := events(t, h.ob, h.db, "LIMIT_EXCEEDED", user); n != 1 {
			t.Fatalf("%d LIMIT_EXCEEDED events", n)
		}
		r2 := h.reserve(t, user, 420)
		if err := h.m.ReleaseUpload(ctx, r2.ID); err != nil {
			t.Fatal(err)
		}
		if err := h.m.ReleaseUpload(ctx, r2.ID); err != nil {
			t.Fatal(err)
		}
		h.wantUpload(t, user, 580, 0)
		if err := h.m.CommitUpload(ctx, r2.ID, 420); !errors.Is(err, usage.ErrReservationSettled) {
			t.Fatalf("commit after release: %v", err)
		}
		if err := h.m.CommitUpload(ctx, "0195a3c4-0000-7000-8000-000000000000", 1); !errors.Is(err, usage.ErrReservationNotFound) {
			t.Fatalf("unknown: %v", err)
		}

		// More than reserved: the excess must fit.
		r3 := h.reserve(t, user, 100)
		if err := h.m.CommitUpload(ctx, r3.ID, 421); err == nil {
			t.Fatal("excess over the limit was admitted")
		} else {
			wantLimit(t, err, noon)
		}
		h.wantUpload(t, user, 580, 100)
		if err := h.m.CommitUpload(ctx, r3.ID, 420); err != nil {
			t.Fatal(err)
		}
		h.wantUpload(t, user, 1000, 0)
	})
}

func TestInvalidArguments(t *testing.T) {
	implementations(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		user := authntest.NewUserID()
		if _, err := h.m.ReserveUpload(ctx, "someone", 1, time.Hour); !errors.Is(err, usage.ErrInvalidUserID) {
			t.Fatalf("bad user: %v", err)
		}
		if _, err := h.m.ReserveUpload(ctx, user, -1, time.Hour); !errors.Is(err, usage.ErrInvalid) {
			t.Fatalf("negative: %v", err)
		}
		if _, err := h.m.ReserveUpload(ctx, user, 1, -time.Second); !errors.Is(err, usage.ErrInvalid) {
			t.Fatalf("negative ttl: %v", err)
		}
		if _, err := h.m.Allowance(ctx, "x"); !errors.Is(err, usage.ErrInvalidUserID) {
			t.Fatalf("allowance of bad user: %v", err)
		}
		bad := int64(-2)
		if err := h.m.SetLimits(ctx, user, usage.Limits{DailyEgress: &bad}); !errors.Is(err, usage.ErrInvalid) {
			t.Fatalf("limit -2: %v", err)
		}
	})
}

// TestDayRollover: counters are per UTC day and reset at midnight; an
// upload counts on the day it started.
func TestDayRollover(t *testing.T) {
	implementations(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		user := authntest.NewUserID()
		h.clock.Set(day0.Add(24*time.Hour - 30*time.Second)) // 23:59:30
		late := h.reserve(t, user, 700)
		if err := h.m.AddEgress(ctx, "", map[string]int64{user: 4000}); err != nil {
			t.Fatal(err)
		}
		if a, err := h.m.Allowance(ctx, user); err != nil || a != 1000 {
			t.Fatalf("allowance before midnight: %d %v", a, err)
		}
		_, err := h.m.ReserveUpload(ctx, user, 301, time.Hour)
		wantLimit(t, err, 30*time.Second)

		h.clock.Advance(time.Minute) // 00:00:30 the next day
		st := h.today(t, user)
		if st.Day != "2025-03-15" || st.Upload.UsedBytes != 0 || st.Upload.ReservedBytes != 0 || st.Egress.UsedBytes != 0 {
			t.Fatalf("new day: %+v", st)
		}
		if a, err := h.m.Allowance(ctx, user); err != nil || a != defaultEgress {
			t.Fatalf("allowance after midnight: %d %v", a, err)
		}
		// The upload that started yesterday counts on yesterday.
		if err := h.m.CommitUpload(ctx, late.ID, 700); err != nil {
			t.Fatal(err)
		}
		h.wantUpload(t, user, 0, 0)
		h.reserve(t, user, 1000)
		hist, err := h.svc.History(ctx, user, "2025-03-14", "2025-03-15")
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 2 || hist[0].Upload.UsedBytes != 700 || hist[0].Egress.UsedBytes != 4000 ||
			hist[1].Upload.ReservedBytes != 1000 || hist[1].Egress.UsedBytes != 0 {
			t.Fatalf("history: %+v", hist)
		}
	})
}

func TestLimitOverrides(t *testing.T) {
	implementations(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		user, other := authntest.NewUserID(), authntest.NewUserID()
		unlimited, small := usage.Unlimited, int64(300)
		if err := h.m.SetLimits(ctx, user, usage.Limits{DailyUpload: &unlimited}); err != nil {
			t.Fatal(err)
		}
		r := h.reserve(t, user, 1<<40)
		if err := h.m.CommitUpload(ctx, r.ID, 1<<40+5); err != nil {
			t.Fatal(err)
		}
		// Setting one limit keeps the other.
		if err := h.m.SetLimits(ctx, user, usage.Limits{DailyEgress: &small}); err != nil {
			t.Fatal(err)
		}
		st := h.today(t, user)
		if st.Upload.LimitBytes != -1 || st.Egress.LimitBytes != 300 || st.Upload.UsedBytes != 1<<40+5 {
			t.Fatalf("overrides: %+v", st)
		}
		if a, _ := h.m.Allowance(ctx, user); a != 300 {
			t.Fatalf("allowance %d", a)
		}
		if err := h.m.SetLimits(ctx, user, usage.Limits{DailyEgress: &unlimited}); err != nil {
			t.Fatal(err)
		}
		if a, _ := h.m.Allowance(ctx, user); a != usage.Unlimited {
			t.Fatalf("unlimited allowance %d", a)
		}
		// A lowered upload limit refuses even small uploads.
		zero := int64(0)
		if err := h.m.SetLimits(ctx, user, usage.Limits{DailyUpload: &zero}); err != nil {
			t.Fatal(err)
		}
		_, err := h.m.ReserveUpload(ctx, user, 1, time.Hour)
		wantLimit(t, err, noon)
		// Nobody else is affected.
		if st := h.today(t, other); st.Upload.LimitBytes != defaultUpload || st.Egress.LimitBytes != defaultEgress {
			t.Fatalf("other user: %+v", st)
		}
		if err := h.m.SetLimits(ctx, other, usage.Limits{}); err != nil {
			t.Fatalf("empty limits: %v", err)
		}
	})
}

func TestEgress(t *testing.T) {
	implementations(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		a, b := authntest.NewUserID(), authntest.NewUserID()
		// Batch ids are unique across the implementations sharing the database.
		id1, id2 := authntest.NewUserID(), authntest.NewUserID()
		batch := map[string]int64{a: 1200, b: 7000}
		if err := h.m.AddEgress(ctx, id1, batch); err != nil {
			t.Fatal(err)
		}
		// The same batch again (a retry) does not count twice.
		if err := h.m.AddEgress(ctx, id1, batch); err != nil {
			t.Fatal(err)
		}
		if err := h.m.AddEgress(ctx, id2, map[string]int64{a: 800, "not-a-user": 5, b: 0}); err != nil {
			t.Fatal(err)
		}
		if st := h.today(t, a); st.Egress.UsedBytes != 2000 {
			t.Fatalf("a: %+v", st.Egress)
		}
		if got, _ := h.m.Allowance(ctx, a); got != 3000 {
			t.Fatalf("a allowance %d", got)
		}
		// Over the limit (bytes already delivered): allowance 0, not negative.
		if got, _ := h.m.Allowance(ctx, b); got != 0 {
			t.Fatalf("b allowance %d", got)
		}
		if err := h.m.AddEgress(ctx, "", nil); err != nil {
			t.Fatal(err)
		}
	})
}

// TestUploadRace: 50 goroutines reserve at once against one daily limit;
// it is never overshot by a byte.
func TestUploadRace(t *testing.T) {
	implementations(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		user := authntest.NewUserID()
		const racers = 50
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			granted atomic.Int64
			ok, no  atomic.Int64
			failed  = make(chan error, racers)
		)
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				n := int64(37 + i%5)
				_, err := h.m.ReserveUpload(ctx, user, n, time.Hour)
				switch {
				case err == nil:
					granted.Add(n)
					ok.Add(1)
				case errors.Is(err, usage.ErrDailyLimit):
					no.Add(1)
				default:
					failed <- err
				}
			}()
		}
		close(start)
		wg.Wait()
		close(failed)
		for err := range failed {
			t.Fatalf("racer failed: %v", err)
		}
		st := h.today(t, user)
		if st.Upload.ReservedBytes != granted.Load() || st.Upload.ReservedBytes > defaultUpload {
			t.Fatalf("reserved %d, granted %d, limit %d", st.Upload.ReservedBytes, granted.Load(), defaultUpload)
		}
		if defaultUpload-st.Upload.ReservedBytes >= 41 || no.Load() == 0 {
			t.Fatalf("refused with room left: %+v, %d refused", st.Upload, no.Load())
		}
		t.Logf("%d granted (%d bytes), %d refused", ok.Load(), granted.Load(), no.Load())
	})
}

func TestSweepExpiry(t *testing.T) {
	implementations(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		user := authntest.NewUserID()
		short, err := h.m.ReserveUpload(ctx, user, 600, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		h.reserve(t, user, 100)
		h.clock.Advance(2 * time.Minute)
		// Past its time until the sweep (here, through the interface)
		// releases it.
		if l, err := h.m.Lapsed(ctx, 0); err != nil || l.Count != 1 || l.Bytes != 600 {
			t.Fatalf("lapsed = %+v, %v; want one of 600 bytes", l, err)
		}
		if l, err := h.m.Lapsed(ctx, 5*time.Minute); err != nil || l.Count != 0 {
			t.Fatalf("lapsed more than 5 minutes ago = %+v, %v; want none", l, err)
		}
		if err := h.m.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if l, err := h.m.Lapsed(ctx, 0); err != nil || l.Count != 0 {
			t.Fatalf("lapsed after the sweep = %+v, %v", l, err)
		}
		h.wantUpload(t, user, 0, 100)
		if err := h.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		h.wantUpload(t, user, 0, 100)
		// A late commit is admitted again while there is room.
		if err := h.m.CommitUpload(ctx, short.ID, 600); err != nil {
			t.Fatal(err)
		}
		h.wantUpload(t, user, 600, 100)
		if err := h.m.ReleaseUpload(ctx, short.ID); err != nil {
			t.Fatal(err)
		}
		h.wantUpload(t, user, 600, 100)
	})
}

// TestLeases: an upload reservation taken as a lease lives while its
// holder renews it and is released a lease after the holder stops.
func TestLeases(t *testing.T) {
	implementations(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		const lease = 2 * time.Minute
		user := authntest.NewUserID()
		alive, err := h.m.ReserveUpload(ctx, user, 100, lease)
		if err != nil {
			t.Fatal(err)
		}
		dead, err := h.m.ReserveUpload(ctx, user, 600, lease)
		if err != nil {
			t.Fatal(err)
		}
		for range 8 {
			h.clock.Advance(30 * time.Second)
			if err := h.m.RenewUpload(ctx, alive.ID, lease); err != nil {
				t.Fatal(err)
			}
			if err := h.svc.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
		}
		h.wantUpload(t, user, 0, 100)
		if err := h.m.RenewUpload(ctx, dead.ID, lease); !errors.Is(err, usage.ErrReservationSettled) {
			t.Fatalf("renew a lapsed lease: %v", err)
		}
		if err := h.m.RenewUpload(ctx, authntest.NewUserID(), lease); !errors.Is(err, usage.ErrReservationNotFound) {
			t.Fatalf("renew an unknown reservation: %v", err)
		}
		if err := h.m.CommitUpload(ctx, alive.ID, 100); err != nil {
			t.Fatal(err)
		}
		h.wantUpload(t, user, 100, 0)
	})
}

func TestClientRetries(t *testing.T) {
	implementations(t, func(t *testing.T, h *harness) {
		if h.srv == nil {
			t.Skip("in process: nothing to lose")
		}
		ctx := t.Context()
		user := authntest.NewUserID()
		h.drop.Store(1)
		r := h.reserve(t, user, 100)
		h.wantUpload(t, user, 0, 100)
		h.drop.Store(1)
		if err := h.m.CommitUpload(ctx, r.ID, 100); err != nil {
			t.Fatal(err)
		}
		h.wantUpload(t, user, 100, 0)
		h.drop.Store(1)
		if err := h.m.AddEgress(ctx, "", map[string]int64{user: 10}); err != nil {
			t.Fatal(err)
		}
		if st := h.today(t, user); st.Egress.UsedBytes != 10 {
			t.Fatalf("egress retried and counted twice: %+v", st.Egress)
		}
		h.drop.Store(10)
		if _, err := h.m.Allowance(ctx, user); !errors.Is(err, errs.ErrUnavailable) {
			t.Fatalf("down: %v", err)
		}
		// A reserve whose every answer is lost names the hold it made, for
		// the caller to release.
		h.drop.Store(10)
		lost, err := h.m.ReserveUpload(ctx, user, 7, time.Hour)
		if !errors.Is(err, errs.ErrUnavailable) || lost.ID == "" {
			t.Fatalf("reserve, answers lost: %+v %v", lost, err)
		}
		h.drop.Store(0)
		h.wantUpload(t, user, 100, 7)
		if err := h.m.ReleaseUpload(ctx, lost.ID); err != nil {
			t.Fatal(err)
		}
		h.wantUpload(t, user, 100, 0)
	})
}
