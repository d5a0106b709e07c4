package videos

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	tusd "github.com/tus/tusd/v2/pkg/handler"

	"github.com/reel-video/reel/internal/platform/sqldb"
)

// The tus lock (decision 0017): one request at a time may work on an
// upload, across every replica that shares the tus directory. A lock is a
// row of tus_locks held for a lease, renewed while held, so that a killed
// replica's locks lapse a lease later; a waiter marks the row, and the
// holder, which polls it, interrupts its request (tusd's requestRelease)
// so that a stalled PATCH lets go, as tusd's memory locker does in one
// process.
const (
	// tusLockLease is how long a lock outlives its last renewal: a
	// replica that dies mid-PATCH (or is cut off) holds the upload that
	// long, so it is short: a client resuming through the gateway must
	// not wait for it past the gateway's patience. It is renewed every
	// third of it.
	tusLockLease = 5 * time.Second
	// tusLockPoll is how often a holder reads whether it is asked to let
	// go, and a waiter tries again.
	tusLockPoll = 500 * time.Millisecond
	// tusLockWait is how long a request waits for a lock (tusd's
	// AcquireLockTimeout): more than a lease, so that a request resuming
	// the upload of a dead replica gets it.
	tusLockWait = 2 * tusLockLease
)

// tusLocker is tusd's handler.Locker on the videos database. Within the
// process a map lets one request per upload on to the database, so that
// requests of one process hand over at once (as tusd's memory locker
// does) and the database sees one holder per process.
type tusLocker struct {
	db *sqldb.DB
	// holder names this process in tus_locks, random at each start.
	holder      string
	lease, poll time.Duration
	log         *slog.Logger
	// fail turns a database error into tusd's answer (a problem document
	// that keeps the error's text to the log).
	fail func(context.Context, error) error

	mu   sync.Mutex
	held map[string]*tusLock
}

func newTUSLocker(db *sqldb.DB, log *slog.Logger) *tusLocker {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return &tusLocker{db: db, holder: hex.EncodeToString(b[:]), lease: tusLockLease, poll: tusLockPoll, log: log,
		fail: func(_ context.Context, err error) error { return err }, held: map[string]*tusLock{}}
}

// NewLock is tusd's: a lock that asks the holder to let go.
func (l *tusLocker) NewLock(id string) (tusd.Lock, error) { return l.newLock(id, false), nil }

// newLock makes a lock on the upload id; a polite one waits without
// asking the holder to let go (expiry never interrupts a live request).
func (l *tusLocker) newLock(id string, polite bool) *tusLock {
	return &tusLock{l: l, id: id, polite: polite, released: make(chan struct{}), stop: make(chan struct{})}
}

type tusLock struct {
	l      *tusLocker
	id     string
	polite bool
	// requestRelease is the holding request's, set before the lock is in
	// the map.
	requestRelease func()
	// released is closed once the lock is given up in this process.
	released chan struct{}
	// stop ends the keeper, which closes kept when it has (nil until
	// the keeper starts).
	stop     chan struct{}
	stopOnce sync.Once
	kept     chan struct{}
}

// Lock waits until the lock is had, or ctx ends (tusd.ErrLockTimeout).
func (k *tusLock) Lock(ctx context.Context, requestRelease func()) error {
	k.requestRelease = requestRelease
	for {
		k.l.mu.Lock()
		other, ok := k.l.held[k.id]
		if !ok {
			k.l.held[k.id] = k
			k.l.mu.Unlock()
			break
		}
		k.l.mu.Unlock()
		if !k.polite {
			other.requestRelease()
		}
		select {
		case <-ctx.Done():
			return tusd.ErrLockTimeout
		case <-other.released:
		}
	}
	if err := k.acquire(ctx); err != nil {
		k.drop()
		return err
	}
	k.kept = make(chan struct{})
	go k.keep()
	return nil
}

// acquire takes the row: absent, lapsed, or this process's own (left by a
// release that failed; the map says no request here holds it).
func (k *tusLock) acquire(ctx context.Context) error {
	tick := time.NewTicker(k.l.poll)
	defer tick.Stop()
	for {
		res, err := k.l.db.W.ExecContext(ctx, `INSERT INTO tus_locks (upload_id, holder, expires_at, release_requested)
VALUES ($1, $2, $3, 0)
ON CONFLICT (upload_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, release_requested = 0
WHERE tus_locks.expires_at < $4 OR tus_locks.holder = excluded.holder`,
			k.id, k.l.holder, time.Now().Add(k.l.lease).UnixMicro(), time.Now().UnixMicro())
		var n int64
		if err == nil {
			n, err = res.RowsAffected()
		}
		if err == nil && n == 0 && !k.polite {
			_, err = k.l.db.W.ExecContext(ctx, `UPDATE tus_locks SET release_requested = 1
WHERE upload_id = $1 AND holder <> $2 AND release_requested = 0`, k.id, k.l.holder)
		}
		switch {
		case ctx.Err() != nil:
			return tusd.ErrLockTimeout
		case err != nil:
			return k.l.fail(ctx, fmt.Errorf("tus lock %s: %w", k.id, err))
		case n > 0:
			return nil
		}
		select {
		case <-ctx.Done():
			return tusd.ErrLockTimeout
		case <-tick.C:
		}
	}
}

// keep renews the lease every third of it and reads at every poll
// whether another request asks for the lock. The holding request is
// interrupted when asked, when the lock was taken over (it lapsed), and
// when the lease could not be renewed for two thirds of it: it stops
// writing before another replica may take the upload over.
func (k *tusLock) keep() {
	defer close(k.kept)
	tick := time.NewTicker(k.l.poll)
	defer tick.Stop()
	lease := k.l.lease
	renewed := time.Now()
	interrupted := false
	interrupt := func(why string) {
		if !interrupted {
			interrupted = true
			k.l.log.Info("tus lock: interrupting the request holding an upload", "upload", k.id, "why", why)
			k.requestRelease()
		}
	}
	for {
		select {
		case <-k.stop:
			return
		case <-tick.C:
		}
		now := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), lease/3)
		var asked int
		var err error
		if now.Sub(renewed) >= lease/3 {
			err = k.l.db.W.QueryRowContext(ctx, `UPDATE tus_locks SET expires_at = $1 WHERE upload_id = $2 AND holder = $3
RETURNING release_requested`, now.Add(lease).UnixMicro(), k.id, k.l.holder).Scan(&asked)
			if err == nil {
				renewed = now
			}
		} else {
			err = k.l.db.R.QueryRowContext(ctx, `SELECT release_requested FROM tus_locks WHERE upload_id = $1 AND holder = $2`,
				k.id, k.l.holder).Scan(&asked)
		}
		cancel()
		switch {
		case errors.Is(err, sql.ErrNoRows):
			interrupt("taken over")
			return
		case err != nil:
			k.l.log.Warn("tus lock: renew", "upload", k.id, "err", err)
			if time.Since(renewed) >= 2*lease/3 {
				interrupt("lease not renewed")
			}
		case asked != 0:
			interrupt("asked for")
		}
	}
}

// halt stops renewing, as a dead process would.
func (k *tusLock) halt() {
	k.stopOnce.Do(func() { close(k.stop) })
	if k.kept != nil {
		<-k.kept
	}
}

// Unlock gives the lock up; a row that cannot be deleted lapses a lease
// later.
func (k *tusLock) Unlock() error {
	k.halt()
	ctx, cancel := context.WithTimeout(context.Background(), k.l.lease/3)
	defer cancel()
	if _, err := k.l.db.W.ExecContext(ctx, `DELETE FROM tus_locks WHERE upload_id = $1 AND holder = $2`, k.id, k.l.holder); err != nil {
		k.l.log.Warn("tus lock: release", "upload", k.id, "err", err)
	}
	k.drop()
	return nil
}

// drop takes the lock out of the process's map and wakes its waiters.
func (k *tusLock) drop() {
	k.l.mu.Lock()
	if k.l.held[k.id] == k {
		delete(k.l.held, k.id)
	}
	k.l.mu.Unlock()
	close(k.released)
}

// sweep deletes the rows of locks lapsed long ago (their holder died and
// no request came for the upload since).
func (l *tusLocker) sweep(ctx context.Context, before time.Time) error {
	if _, err := l.db.W.ExecContext(ctx, `DELETE FROM tus_locks WHERE expires_at < $1`, before.UnixMicro()); err != nil {
		return fmt.Errorf("sweep tus locks: %w", err)
	}
	return nil
}
