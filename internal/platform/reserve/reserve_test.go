package reserve_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/reserve"
)

var t0 = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

const day = "2025-03-14"

func hold(user string, n int64) reserve.Hold {
	return reserve.Hold{ID: reserve.NewID(), UserID: user, Bytes: n, Day: day}
}

func same(a, b reserve.Hold) bool {
	return a.ID == b.ID && a.UserID == b.UserID && a.Bytes == b.Bytes && a.Day == b.Day && a.ExpiresAt.Equal(b.ExpiresAt)
}

func mustReserve(t *testing.T, l *ledger, want reserve.Hold, ttl time.Duration, now time.Time) reserve.Hold {
	t.Helper()
	h, err := l.Reserve(t.Context(), want, ttl, now, take)
	if err != nil {
		t.Fatalf("reserve %+v: %v", want, err)
	}
	if h.ID != want.ID || h.UserID != want.UserID || h.Bytes != want.Bytes || h.Day != want.Day || !h.ExpiresAt.Equal(now.Add(ttl)) {
		t.Fatalf("reserve %+v for %s answered %+v", want, ttl, h)
	}
	return h
}

func TestCommitAndRelease(t *testing.T) {
	withLedger(t, 0, func(t *testing.T, l *ledger) {
		ctx := t.Context()
		user := reserve.NewID()
		h := mustReserve(t, l, hold(user, 300), time.Hour, t0)
		l.wantAccount(t, user, day, 300, 0)

		// Less than held gives the rest back; the same commit again
		// changes nothing; another is a conflict.
		s := reserve.Settlement{Actual: 250, Object: "a"}
		for range 2 {
			if err := l.Commit(ctx, h.ID, s, t0, admit); err != nil {
				t.Fatal(err)
			}
			l.wantAccount(t, user, day, 0, 250)
		}
		for _, other := range []reserve.Settlement{{Actual: 251, Object: "a"}, {Actual: 250, Object: "b"}} {
			if err := l.Commit(ctx, h.ID, other, t0, admit); !errors.Is(err, errSettled) {
				t.Fatalf("commit %+v after %+v: %v", other, s, err)
			}
		}
		// Releasing a committed hold does nothing.
		if err := l.Release(ctx, h.ID, t0); err != nil {
			t.Fatal(err)
		}
		l.wantAccount(t, user, day, 0, 250)
		if st := l.state(t, h.ID); st != reserve.Committed {
			t.Fatalf("state %q", st)
		}

		// Release is idempotent, and a released hold cannot be committed.
		r := mustReserve(t, l, hold(user, 100), time.Hour, t0)
		l.wantAccount(t, user, day, 100, 250)
		for range 2 {
			if err := l.Release(ctx, r.ID, t0); err != nil {
				t.Fatal(err)
			}
			l.wantAccount(t, user, day, 0, 250)
		}
		if err := l.Commit(ctx, r.ID, reserve.Settlement{Actual: 100}, t0, admit); !errors.Is(err, errSettled) {
			t.Fatalf("commit after release: %v", err)
		}
		l.wantAccount(t, user, day, 0, 250)

		// Unknown ids: Commit says so, Release does nothing.
		for _, id := range []string{reserve.NewID(), "not-a-uuid", "0195A3C4-0000-7000-8000-000000000000"} {
			if err := l.Commit(ctx, id, reserve.Settlement{Actual: 1}, t0, admit); !errors.Is(err, errNotFound) {
				t.Fatalf("commit %s: %v", id, err)
			}
			if err := l.Release(ctx, id, t0); err != nil {
				t.Fatalf("release %s: %v", id, err)
			}
		}
	})
}

func TestCommitAboveHeldMustFit(t *testing.T) {
	withLedger(t, 0, func(t *testing.T, l *ledger) {
		ctx := t.Context()
		user := reserve.NewID()
		a := mustReserve(t, l, hold(user, 400), time.Hour, t0)
		b := mustReserve(t, l, hold(user, 400), time.Hour, t0)
		// 400 held elsewhere: a may grow to 600, not 601.
		if err := l.Commit(ctx, a.ID, reserve.Settlement{Actual: 601}, t0, admit); !errors.Is(err, errFull) {
			t.Fatalf("commit over the cap: %v", err)
		}
		// The refusal rolled back: a is still held, for its caller to release.
		l.wantAccount(t, user, day, 800, 0)
		if st := l.state(t, a.ID); st != reserve.Held {
			t.Fatalf("state after a refused commit %q", st)
		}
		if err := l.Commit(ctx, a.ID, reserve.Settlement{Actual: 600}, t0, admit); err != nil {
			t.Fatal(err)
		}
		l.wantAccount(t, user, day, 400, 600)
		if err := l.Release(ctx, b.ID, t0); err != nil {
			t.Fatal(err)
		}
		l.wantAccount(t, user, day, 0, 600)
	})
}

func TestReserveIsIdempotentByID(t *testing.T) {
	withLedger(t, 0, func(t *testing.T, l *ledger) {
		ctx := t.Context()
		user := reserve.NewID()
		want := hold(user, 300)
		first := mustReserve(t, l, want, time.Hour, t0)
		// The same request again, later (a retry after a lost answer, even
		// past midnight): the first hold, held once.
		again := want
		again.Day = "2025-03-15"
		h, err := l.Reserve(ctx, again, 2*time.Hour, t0.Add(12*time.Hour), take)
		if err != nil || !same(h, first) {
			t.Fatalf("retried reserve: %+v %v, want %+v", h, err, first)
		}
		l.wantAccount(t, user, day, 300, 0)
		// Another request under the same id is a conflict.
		// It names no hold: the one under the id is another's.
		for _, other := range []reserve.Hold{
			{ID: want.ID, UserID: user, Bytes: 301, Day: day},
			{ID: want.ID, UserID: reserve.NewID(), Bytes: 300, Day: day},
		} {
			if h, err := l.Reserve(ctx, other, time.Hour, t0, take); !errors.Is(err, errSettled) || h.ID != "" {
				t.Fatalf("reserve %+v under a taken id: %+v %v", other, h, err)
			}
		}
		l.wantAccount(t, user, day, 300, 0)
		// A reserve whose context ended may have committed as it ended:
		// it names its hold, for its caller to release.
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		lost := hold(user, 5)
		if h, err := l.Reserve(cancelled, lost, time.Hour, t0, take); !errors.Is(err, context.Canceled) || h.ID != lost.ID {
			t.Fatalf("reserve with its context ended: %+v %v", h, err)
		}
	})
}

func TestConcurrentRetriesHoldOnce(t *testing.T) {
	withLedger(t, 0, func(t *testing.T, l *ledger) {
		user := reserve.NewID()
		want := hold(user, 100)
		const n = 16
		got := make([]reserve.Hold, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		// Connections opened beforehand let the attempts below overlap
		// (on PostgreSQL; SQLite's one writer takes them in turn).
		for range n {
			wg.Go(func() { _, _ = l.Reserve(context.Background(), hold(reserve.NewID(), 1), time.Hour, t0, take) })
		}
		wg.Wait()
		for i := range n {
			wg.Go(func() { got[i], errs[i] = l.Reserve(context.Background(), want, time.Hour, t0, take) })
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil || !same(got[i], got[0]) || got[i].ID != want.ID {
				t.Fatalf("attempt %d: %+v %v (first %+v)", i, got[i], errs[i], got[0])
			}
		}
		l.wantAccount(t, user, day, 100, 0)

		// Concurrent commits of the same values settle once.
		s := reserve.Settlement{Actual: 90, Object: "o"}
		for i := range n {
			wg.Go(func() { errs[i] = l.Commit(context.Background(), want.ID, s, t0, admit) })
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("commit %d: %v", i, errs[i])
			}
		}
		l.wantAccount(t, user, day, 0, 90)
	})
}

func TestRefusalCommitsTakesRecord(t *testing.T) {
	withLedger(t, 0, func(t *testing.T, l *ledger) {
		ctx := t.Context()
		user := reserve.NewID()
		mustReserve(t, l, hold(user, 600), time.Hour, t0)
		refused := hold(user, 401)
		if _, err := l.Reserve(ctx, refused, time.Hour, t0, take); !errors.Is(err, errFull) {
			t.Fatalf("reserve over the cap: %v", err)
		}
		l.wantAccount(t, user, day, 600, 0)
		if st := l.state(t, refused.ID); st != "" {
			t.Fatalf("a refused hold was stored as %q", st)
		}
		var notes int
		if err := l.db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM refusals WHERE user_id = $1 AND bytes = 401`, user).Scan(&notes); err != nil {
			t.Fatal(err)
		}
		if notes != 1 {
			t.Fatalf("%d refusals recorded, want the one", notes)
		}
		// Another error from Take rolls back what it wrote.
		boom := errors.New("boom")
		fail := func(ctx context.Context, tx *sql.Tx, h reserve.Hold) error {
			if err := take(ctx, tx, h); err != nil {
				return err
			}
			return boom
		}
		if _, err := l.Reserve(ctx, hold(user, 1), time.Hour, t0, fail); !errors.Is(err, boom) {
			t.Fatalf("take failing: %v", err)
		}
		l.wantAccount(t, user, day, 600, 0)
	})
}

func TestArgumentsAreChecked(t *testing.T) {
	withLedger(t, 0, func(t *testing.T, l *ledger) {
		ctx := t.Context()
		user := reserve.NewID()
		for name, c := range map[string]struct {
			h    reserve.Hold
			ttl  time.Duration
			want error
		}{
			"user not a UUID":     {reserve.Hold{ID: reserve.NewID(), UserID: "ann", Bytes: 1}, time.Hour, reserve.ErrInvalidUserID},
			"user in upper case":  {reserve.Hold{ID: reserve.NewID(), UserID: "0195A3C4-0000-7000-8000-000000000000", Bytes: 1}, time.Hour, reserve.ErrInvalidUserID},
			"id not a UUID":       {reserve.Hold{ID: "1", UserID: user, Bytes: 1}, time.Hour, reserve.ErrInvalid},
			"negative bytes":      {reserve.Hold{ID: reserve.NewID(), UserID: user, Bytes: -1}, time.Hour, reserve.ErrInvalid},
			"too many bytes":      {reserve.Hold{ID: reserve.NewID(), UserID: user, Bytes: reserve.MaxBytes + 1}, time.Hour, reserve.ErrInvalid},
			"no time":             {reserve.Hold{ID: reserve.NewID(), UserID: user, Bytes: 1}, 0, reserve.ErrInvalid},
			"longer than allowed": {reserve.Hold{ID: reserve.NewID(), UserID: user, Bytes: 1}, reserve.MaxTTL + time.Second, reserve.ErrInvalid},
		} {
			if _, err := l.Reserve(ctx, c.h, c.ttl, t0, take); !errors.Is(err, c.want) {
				t.Errorf("%s: %v, want %v", name, err, c.want)
			}
		}
		h := mustReserve(t, l, reserve.Hold{ID: reserve.NewID(), UserID: user, Bytes: 0}, reserve.MaxTTL, t0)
		for _, n := range []int64{-1, reserve.MaxBytes + 1} {
			if err := l.Commit(ctx, h.ID, reserve.Settlement{Actual: n}, t0, admit); !errors.Is(err, reserve.ErrInvalid) {
				t.Errorf("commit %d: %v", n, err)
			}
		}
	})
}

func TestSweepExpiresAndForgets(t *testing.T) {
	withLedger(t, 0, func(t *testing.T, l *ledger) {
		ctx := t.Context()
		user := reserve.NewID()
		short := mustReserve(t, l, hold(user, 300), time.Hour, t0)
		long := mustReserve(t, l, hold(user, 200), 2*time.Hour, t0)
		gone := mustReserve(t, l, hold(user, 100), time.Hour, t0)

		// Nothing is due before its time; at its time it is.
		if n, err := l.Sweep(ctx, t0.Add(time.Hour-time.Microsecond)); err != nil || n != 0 {
			t.Fatalf("early sweep: %d %v", n, err)
		}
		if n, err := l.Sweep(ctx, t0.Add(time.Hour)); err != nil || n != 2 {
			t.Fatalf("sweep: %d %v", n, err)
		}
		l.wantAccount(t, user, day, 200, 0)
		if st := l.state(t, short.ID); st != reserve.Expired {
			t.Fatalf("state %q", st)
		}
		// An expired hold is not released again, and a late commit is
		// admitted anew while there is room...
		if err := l.Release(ctx, gone.ID, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		l.wantAccount(t, user, day, 200, 0)
		if err := l.Commit(ctx, short.ID, reserve.Settlement{Actual: capBytes - 200 + 1}, t0.Add(time.Hour), admit); !errors.Is(err, errFull) {
			t.Fatalf("late commit without room: %v", err)
		}
		if st := l.state(t, short.ID); st != reserve.Expired {
			t.Fatalf("state after a refused late commit %q", st)
		}
		if err := l.Commit(ctx, short.ID, reserve.Settlement{Actual: 600}, t0.Add(time.Hour), admit); err != nil {
			t.Fatalf("late commit with room: %v", err)
		}
		l.wantAccount(t, user, day, 200, 600)
		// ...and answered the same when repeated.
		if err := l.Commit(ctx, short.ID, reserve.Settlement{Actual: 600}, t0.Add(2*time.Hour), admit); err != nil {
			t.Fatal(err)
		}
		l.wantAccount(t, user, day, 200, 600)

		if n, err := l.Sweep(ctx, t0.Add(2*time.Hour)); err != nil || n != 1 {
			t.Fatalf("second sweep: %d %v", n, err)
		}
		l.wantAccount(t, user, day, 0, 600)
		// Settled holds are remembered for SettledRetention, then not.
		if _, err := l.Sweep(ctx, t0.Add(time.Hour+reserve.SettledRetention)); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{short.ID, gone.ID, long.ID} {
			if st := l.state(t, id); st == "" {
				t.Fatalf("%s forgotten within %s", id, reserve.SettledRetention)
			}
		}
		if _, err := l.Sweep(ctx, t0.Add(2*time.Hour+reserve.SettledRetention+time.Microsecond)); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{short.ID, gone.ID, long.ID} {
			if st := l.state(t, id); st != "" {
				t.Fatalf("%s still remembered as %q", id, st)
			}
		}
		if err := l.Commit(ctx, short.ID, reserve.Settlement{Actual: 600}, t0.Add(30*time.Hour), admit); !errors.Is(err, errNotFound) {
			t.Fatalf("commit of a forgotten hold: %v", err)
		}
	})
}

func TestSweepInBatchesPerAccount(t *testing.T) {
	withLedger(t, 2, func(t *testing.T, l *ledger) {
		ctx := t.Context()
		ann, bob := reserve.NewID(), reserve.NewID()
		for _, h := range []reserve.Hold{
			hold(ann, 10), hold(ann, 20), hold(bob, 30),
			{ID: reserve.NewID(), UserID: bob, Bytes: 40, Day: "2025-03-15"},
			{ID: reserve.NewID(), UserID: ann, Bytes: 50},
		} {
			mustReserve(t, l, h, time.Minute, t0)
		}
		kept := mustReserve(t, l, hold(ann, 5), time.Hour, t0)
		if n, err := l.Sweep(ctx, t0.Add(time.Minute)); err != nil || n != 5 {
			t.Fatalf("sweep: %d %v", n, err)
		}
		l.wantAccount(t, ann, day, 5, 0)
		l.wantAccount(t, ann, "", 0, 0)
		l.wantAccount(t, bob, day, 0, 0)
		l.wantAccount(t, bob, "2025-03-15", 0, 0)
		if st := l.state(t, kept.ID); st != reserve.Held {
			t.Fatalf("a hold not due was swept: %q", st)
		}
	})
}

func TestCanonicalUUID(t *testing.T) {
	for s, want := range map[string]bool{
		reserve.NewID():                                 true,
		"0195a3c4-0000-7000-8000-000000000000":          true,
		"0195A3C4-0000-7000-8000-000000000000":          false,
		"0195a3c400007000800000000000000":               false,
		"0195a3c4000070008000000000000000":              false,
		"{0195a3c4-0000-7000-8000-000000000000}":        false,
		"urn:uuid:0195a3c4-0000-7000-8000-000000000000": false,
		"": false,
	} {
		if got := reserve.CanonicalUUID(s); got != want {
			t.Errorf("CanonicalUUID(%q) = %v", s, got)
		}
	}
}

// A hold taken as a lease lapses a lease after its holder stops renewing
// it (the holder died), however long the work could have lasted; renewed,
// it lives on, but never past MaxTTL after it was made.
func TestRenewedLeaseLivesAndLapsedOneIsReleased(t *testing.T) {
	withLedger(t, 0, func(t *testing.T, l *ledger) {
		ctx := t.Context()
		const lease = 2 * time.Minute
		user := reserve.NewID()
		alive := mustReserve(t, l, hold(user, 400), lease, t0)
		dead := mustReserve(t, l, hold(user, 500), lease, t0)
		// The live holder renews every 30 s; the dead one never again.
		now := t0
		for range 8 {
			now = now.Add(30 * time.Second)
			exp, err := l.Renew(ctx, alive.ID, lease, now)
			if err != nil || !exp.Equal(now.Add(lease)) {
				t.Fatalf("renew at %s: %s, %v; want %s", now, exp, err, now.Add(lease))
			}
			if _, err := l.Sweep(ctx, now); err != nil {
				t.Fatal(err)
			}
		}
		if got := l.state(t, dead.ID); got != reserve.Expired {
			t.Fatalf("the dead holder's hold is %q after %s, want expired", got, now.Sub(t0))
		}
		if got := l.state(t, alive.ID); got != reserve.Held {
			t.Fatalf("the live holder's hold is %q, want held", got)
		}
		l.wantAccount(t, user, day, 400, 0)
		// The dead holder's bytes are free again: 600 more fit.
		mustReserve(t, l, hold(user, 600), lease, now)
		// A lapsed hold cannot be renewed; its holder's commit admits anew.
		if _, err := l.Renew(ctx, dead.ID, lease, now); !errors.Is(err, errSettled) {
			t.Fatalf("renew of a lapsed hold: %v, want settled", err)
		}
		if _, err := l.Renew(ctx, reserve.NewID(), lease, now); !errors.Is(err, errNotFound) {
			t.Fatalf("renew of an unknown hold: %v, want not found", err)
		}
		if _, err := l.Renew(ctx, alive.ID, 0, now); !errors.Is(err, reserve.ErrInvalid) {
			t.Fatalf("renew for 0: %v, want invalid", err)
		}
		// However often renewed, a hold ends MaxTTL after it was made.
		late := t0.Add(reserve.MaxTTL - time.Minute)
		if exp, err := l.Renew(ctx, alive.ID, lease, late); err != nil || !exp.Equal(t0.Add(reserve.MaxTTL)) {
			t.Fatalf("renew near MaxTTL: %s, %v; want %s", exp, err, t0.Add(reserve.MaxTTL))
		}
		if err := l.Release(ctx, alive.ID, now); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Renew(ctx, alive.ID, lease, now); !errors.Is(err, errSettled) {
			t.Fatalf("renew of a released hold: %v, want settled", err)
		}
	})
}

// A failed call names its hold unless a refusal came back: only then is
// the outcome known.
func TestUnanswered(t *testing.T) {
	refused := errs.New(errs.TooLarge, "quota_exceeded", "no room")
	for err, want := range map[error]string{
		fmt.Errorf("storage client: reserve: %w", refused):             "",
		fmt.Errorf("storage client: reserve: %w", errs.ErrUnavailable): "h1",
		fmt.Errorf("unexpected answer: status 500"):                    "h1",
		context.DeadlineExceeded:                                       "h1",
		fmt.Errorf("reserve: %w", errs.ErrUnavailable.WithMsg("down")): "h1",
	} {
		if got := reserve.Unanswered("h1", err); got.ID != want {
			t.Errorf("%v: %q, want %q", err, got.ID, want)
		}
	}
}
