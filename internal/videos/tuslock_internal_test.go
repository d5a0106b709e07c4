package videos

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	tusd "github.com/tus/tusd/v2/pkg/handler"

	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

// asked is a requestRelease that records it was called.
type asked struct {
	once sync.Once
	c    chan struct{}
}

func newAsked() *asked { return &asked{c: make(chan struct{})} }

func (a *asked) release() { a.once.Do(func() { close(a.c) }) }

func (a *asked) wait(t *testing.T, what string) {
	t.Helper()
	select {
	case <-a.c:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: the holder was never asked to let go", what)
	}
}

func (a *asked) called() bool {
	select {
	case <-a.c:
		return true
	default:
		return false
	}
}

func isLockTimeout(err error) bool {
	e, ok := err.(tusd.Error)
	return ok && e.ErrorCode == tusd.ErrLockTimeout.ErrorCode
}

// testLocker is a "process": a locker of its own (its own holder id) on
// the shared database.
func testLocker(db *sqldb.DB, lease time.Duration) *tusLocker {
	l := newTUSLocker(db, obs.Discard())
	l.lease, l.poll = lease, 20*time.Millisecond
	return l
}

func lockAsync(k *tusLock, ctx context.Context, rr func()) <-chan error {
	got := make(chan error, 1)
	go func() { got <- k.Lock(ctx, rr) }()
	return got
}

func waitLock(t *testing.T, got <-chan error, what string) {
	t.Helper()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: never got the lock", what)
	}
}

func holderOf(t *testing.T, db *sqldb.DB, id string) (holder string, requested int) {
	t.Helper()
	if err := db.R.QueryRowContext(context.Background(), `SELECT holder, release_requested FROM tus_locks WHERE upload_id = $1`, id).
		Scan(&holder, &requested); err != nil {
		t.Fatalf("lock row of %s: %v", id, err)
	}
	return holder, requested
}

func withLockDB(t *testing.T, fn func(t *testing.T, db *sqldb.DB)) {
	sqldbtest.Open(t, fn, Migrations(), MigrationTable)
}

// Two processes on one database: the second waits while the first holds,
// asks it to let go, and gets the lock once it does; a wait that ends is
// tusd's ErrLockTimeout.
func TestTUSLockAcrossProcesses(t *testing.T) {
	withLockDB(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		a, b := testLocker(db, time.Minute), testLocker(db, time.Minute)
		id := uuid.NewString()
		la, _ := a.NewLock(id)
		askedA := newAsked()
		if err := la.Lock(ctx, askedA.release); err != nil {
			t.Fatal(err)
		}
		if h, _ := holderOf(t, db, id); h != a.holder {
			t.Fatalf("holder %q, want %q", h, a.holder)
		}

		lb, _ := b.NewLock(id)
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := lb.Lock(short, func() {})
		cancel()
		if !isLockTimeout(err) {
			t.Fatalf("a lock held elsewhere: %v, want ErrLockTimeout", err)
		}
		askedA.wait(t, "a request on another replica")

		lb, _ = b.NewLock(id)
		got := lockAsync(lb.(*tusLock), ctx, func() {})
		select {
		case err := <-got:
			t.Fatalf("got a held lock: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		if err := la.Unlock(); err != nil {
			t.Fatal(err)
		}
		waitLock(t, got, "after the holder let go")
		if h, req := holderOf(t, db, id); h != b.holder || req != 0 {
			t.Fatalf("holder %q asked %d, want %q not asked", h, req, b.holder)
		}
		// A's late unlock (again) leaves b's lock alone.
		if err := a.newLock(id, false).Unlock(); err != nil {
			t.Fatal(err)
		}
		if h, _ := holderOf(t, db, id); h != b.holder {
			t.Fatalf("holder %q after another's unlock", h)
		}
		if err := lb.Unlock(); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM tus_locks`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("rows left: %d %v", n, err)
		}
	})
}

// A process that dies holding a lock stops renewing it: another gets it
// once the lease has lapsed.
func TestTUSLockLapsesWithItsHolder(t *testing.T) {
	withLockDB(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		lease := 300 * time.Millisecond
		a, b := testLocker(db, lease), testLocker(db, lease)
		id := uuid.NewString()
		la := a.newLock(id, false)
		if err := la.Lock(ctx, func() {}); err != nil {
			t.Fatal(err)
		}
		// Held over several leases while renewed.
		short, cancel := context.WithTimeout(ctx, 3*lease)
		err := b.newLock(id, true).Lock(short, func() {})
		cancel()
		if !isLockTimeout(err) {
			t.Fatalf("a renewed lock: %v, want ErrLockTimeout", err)
		}
		la.halt() // killed: no renewal, no release
		var lapses int64
		if err := db.R.QueryRowContext(ctx, `SELECT expires_at FROM tus_locks WHERE upload_id = $1`, id).Scan(&lapses); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		lb := b.newLock(id, false)
		if err := lb.Lock(wctx, func() {}); err != nil {
			t.Fatalf("a dead holder's lock: %v", err)
		}
		if now := time.Now().UnixMicro(); now <= lapses {
			t.Fatalf("taken at %d, before the dead holder's lease lapsed at %d", now, lapses)
		}
		if h, _ := holderOf(t, db, id); h != b.holder {
			t.Fatalf("holder %q", h)
		}
		_ = lb.Unlock()
	})
}

// A holder whose lock was taken over (it lapsed while the holder could not
// renew) interrupts its request.
func TestTUSLockTakenOverInterrupts(t *testing.T) {
	withLockDB(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		a := testLocker(db, time.Minute)
		id := uuid.NewString()
		la := a.newLock(id, false)
		askedA := newAsked()
		if err := la.Lock(ctx, askedA.release); err != nil {
			t.Fatal(err)
		}
		if _, err := db.W.ExecContext(ctx, `UPDATE tus_locks SET holder = 'another' WHERE upload_id = $1`, id); err != nil {
			t.Fatal(err)
		}
		askedA.wait(t, "a lock taken over")
		_ = la.Unlock()
		if h, _ := holderOf(t, db, id); h != "another" {
			t.Fatalf("the old holder's unlock deleted the new holder's lock: %q", h)
		}
	})
}

// Requests of one process hand the lock over in the process (the holder
// is asked at once); a polite lock (expiry) asks no holder, here or
// elsewhere.
func TestTUSLockInProcessAndPolite(t *testing.T) {
	withLockDB(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		a, b := testLocker(db, time.Minute), testLocker(db, time.Minute)
		id := uuid.NewString()
		first := a.newLock(id, false)
		askedFirst := newAsked()
		if err := first.Lock(ctx, askedFirst.release); err != nil {
			t.Fatal(err)
		}
		for _, l := range []*tusLocker{a, b} {
			short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			err := l.newLock(id, true).Lock(short, func() {})
			cancel()
			if !isLockTimeout(err) {
				t.Fatalf("polite lock on a held upload: %v", err)
			}
		}
		if askedFirst.called() {
			t.Fatal("a polite lock asked the holder to let go")
		}
		if _, req := holderOf(t, db, id); req != 0 {
			t.Fatal("a polite lock marked the row")
		}

		second := a.newLock(id, false)
		got := lockAsync(second, ctx, func() {})
		askedFirst.wait(t, "another request of the process")
		_ = first.Unlock()
		waitLock(t, got, "in the process")
		if h, _ := holderOf(t, db, id); h != a.holder {
			t.Fatalf("holder %q", h)
		}
		_ = second.Unlock()
	})
}
