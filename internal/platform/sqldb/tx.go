package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/reel-video/reel/internal/platform/backoff"
)

// maxTxRetries is how many times Tx re-runs a PostgreSQL transaction that
// lost a serialization conflict or a deadlock. Such a failure means another
// transaction won, so a retry usually succeeds at once; more than a few in a
// row points at a hot spot that retrying will not fix.
const maxTxRetries = 3

// Tx runs fn in a transaction on the writer and commits, rolling back on
// error or panic (re-panic). On PostgreSQL retry serialization failures
// (40001) and deadlocks (40P01) up to 3 times.
//
// Because of the retries fn may run more than once: it must do all its work
// through tx and have no other side effects that matter if repeated. The
// error fn returns is passed back unchanged (not wrapped), so callers can
// compare it with their own sentinel errors.
//
// Inside fn, use only tx. On SQLite the writer has a single connection,
// which tx holds, so anything that uses db.W inside fn waits forever.
//
// Transactions run at the engine's default isolation level (READ COMMITTED
// on PostgreSQL; SQLite is always serializable). A transaction that needs
// more can start with SET TRANSACTION ISOLATION LEVEL ... on PostgreSQL.
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := db.tx(ctx, fn)
		if err == nil {
			return nil
		}
		if db.Dialect != Postgres || !isRetryable(err) {
			return err
		}
		if attempt == maxTxRetries {
			return fmt.Errorf("sqldb: transaction still conflicting after %d retries: %w", maxTxRetries, err)
		}
		// A short random pause makes it likely that the transaction that
		// won the conflict has finished before this one tries again, and
		// keeps two losers from colliding in lockstep.
		pause := time.Duration(1+attempt) * time.Duration(5+rand.IntN(20)) * time.Millisecond
		if cerr := backoff.Sleep(ctx, pause); cerr != nil {
			return fmt.Errorf("sqldb: transaction retry abandoned: %w", errors.Join(cerr, err))
		}
	}
}

// tx is one attempt of Tx.
func (db *DB) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.W.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqldb: begin transaction: %w", err)
	}
	// Roll back on every way out except a successful commit: a returned
	// error, a panic (which then carries on up the stack with its original
	// traceback) or runtime.Goexit (t.FailNow in a test). Leaving the
	// transaction open would, on SQLite, keep the only writer connection
	// busy and hang every later write.
	committed := false
	defer func() {
		if !committed {
			// The rollback's own error is dropped: the error that made
			// us roll back is the one worth reporting, and if the
			// rollback failed the connection is broken and the server
			// discards the transaction anyway.
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		// On PostgreSQL a serialization failure can surface only here.
		return fmt.Errorf("sqldb: commit transaction: %w", err)
	}
	committed = true
	return nil
}

// isRetryable reports whether err is a PostgreSQL serialization failure or
// deadlock, after which the whole transaction may be run again.
func isRetryable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return pgErr.Code == "40001" || pgErr.Code == "40P01"
}

// IsUniqueViolation reports whether err (or an error it wraps) is a unique
// or primary key constraint violation: PostgreSQL SQLSTATE 23505, or SQLite
// SQLITE_CONSTRAINT_UNIQUE (2067) or SQLITE_CONSTRAINT_PRIMARYKEY (1555).
// Services use it to turn a duplicate insert into a conflict error without
// a racy check-then-insert.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		code := liteErr.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}
