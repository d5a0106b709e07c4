package reserve_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"testing/fstest"
	"time"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/reserve"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

// The ledger is tested through a small service of its own: accounts per
// user and day with a fixed cap, holds that record both an actual size and
// an object, and a table where a refused Reserve notes why (in the
// refused transaction, as the services record their events).
var migrations = fstest.MapFS{"00001_test.sql": {Data: []byte(`-- +goose Up
CREATE TABLE accounts (
    user_id TEXT NOT NULL,
    day     TEXT NOT NULL,
    held    BIGINT NOT NULL DEFAULT 0 CHECK (held >= 0),
    used    BIGINT NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (user_id, day)
);
CREATE TABLE holds (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    day        TEXT NOT NULL,
    bytes      BIGINT NOT NULL,
    state      TEXT NOT NULL,
    actual     BIGINT,
    object     TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    settled_at BIGINT
);
CREATE TABLE refusals (user_id TEXT NOT NULL, bytes BIGINT NOT NULL);
-- +goose Down
DROP TABLE refusals;
DROP TABLE holds;
DROP TABLE accounts;
`)}}

// capBytes is every account's cap.
const capBytes = 1000

var (
	errNotFound = errs.New(errs.NotFound, "reservation_not_found", "no such reservation")
	errSettled  = errs.New(errs.Conflict, "reservation_settled", "the reservation was settled otherwise")
	errFull     = errs.New(errs.TooLarge, "full", "the account is full")
)

// testStore answers Extend, Lapsed and Forget as the services' stores do.
type testStore struct{ reserve.Table }

func (testStore) Get(ctx context.Context, q sqldb.Querier, id string) (reserve.Record, bool, error) {
	var (
		r       reserve.Record
		actual  sql.NullInt64
		object  sql.NullString
		expires int64
	)
	err := q.QueryRowContext(ctx, `SELECT id, user_id, day, bytes, state, actual, object, expires_at FROM holds WHERE id = $1`, id).
		Scan(&r.ID, &r.UserID, &r.Day, &r.Bytes, &r.State, &actual, &object, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return reserve.Record{}, false, nil
	}
	if err != nil {
		return reserve.Record{}, false, err
	}
	r.ExpiresAt = time.UnixMicro(expires).UTC()
	r.Settlement = reserve.Settlement{Actual: actual.Int64, Object: object.String}
	return r, true, nil
}

func (testStore) Insert(ctx context.Context, q sqldb.Querier, h reserve.Hold, now time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO holds (id, user_id, day, bytes, state, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		h.ID, h.UserID, h.Day, h.Bytes, string(reserve.Held), now.UnixMicro(), h.ExpiresAt.UnixMicro())
	return err
}

func (testStore) Settle(ctx context.Context, q sqldb.Querier, id string, from, to reserve.State, s *reserve.Settlement, now time.Time) (reserve.Hold, bool, error) {
	var (
		actual *int64
		object *string
	)
	if s != nil {
		actual, object = &s.Actual, &s.Object
	}
	h := reserve.Hold{ID: id}
	err := q.QueryRowContext(ctx, `UPDATE holds SET state = $1, actual = $2, object = $3, settled_at = $4
WHERE id = $5 AND state = $6 RETURNING user_id, day, bytes`, string(to), actual, object, now.UnixMicro(), id, string(from)).
		Scan(&h.UserID, &h.Day, &h.Bytes)
	if errors.Is(err, sql.ErrNoRows) {
		return reserve.Hold{}, false, nil
	}
	return h, err == nil, err
}

func (testStore) Expire(ctx context.Context, q sqldb.Querier, now time.Time, limit int) ([]reserve.Hold, error) {
	rows, err := q.QueryContext(ctx, fmt.Sprintf(`UPDATE holds SET state = 'expired', settled_at = $1
WHERE id IN (SELECT id FROM holds WHERE state = 'held' AND expires_at <= $1 ORDER BY expires_at LIMIT %d)
AND state = 'held' RETURNING id, user_id, day, bytes`, limit), now.UnixMicro())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []reserve.Hold
	for rows.Next() {
		var h reserve.Hold
		if err := rows.Scan(&h.ID, &h.UserID, &h.Day, &h.Bytes); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

func (testStore) GiveBack(ctx context.Context, q sqldb.Querier, userID, day string, bytes int64, _ time.Time) error {
	_, err := q.ExecContext(ctx, `UPDATE accounts SET held = held - $1 WHERE user_id = $2 AND day = $3`, bytes, userID, day)
	return err
}

// take is the test service's Take: hold if used + held + bytes fits under
// the cap, else note the refusal and refuse.
func take(ctx context.Context, tx *sql.Tx, h reserve.Hold) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO accounts (user_id, day) VALUES ($1, $2) ON CONFLICT (user_id, day) DO NOTHING`, h.UserID, h.Day); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE accounts SET held = held + $1 WHERE user_id = $2 AND day = $3 AND used + held + $1 <= $4`,
		h.Bytes, h.UserID, h.Day, capBytes)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO refusals (user_id, bytes) VALUES ($1, $2)`, h.UserID, h.Bytes); err != nil {
		return err
	}
	return reserve.Refuse(errFull)
}

// admit is the test service's Admit: the held bytes become actual ones if
// the actual size fits.
func admit(ctx context.Context, tx *sql.Tx, h reserve.Hold, actual int64) error {
	res, err := tx.ExecContext(ctx, `UPDATE accounts SET used = used + $1, held = held - $2
WHERE user_id = $3 AND day = $4 AND used + held - $2 + $1 <= $5`, actual, h.Bytes, h.UserID, h.Day, capBytes)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	return errFull
}

// ledger is a test ledger on a fresh database of each engine.
type ledger struct {
	*reserve.Ledger
	db    *sqldb.DB
	store testStore
}

func withLedger(t *testing.T, sweepBatch int, fn func(t *testing.T, l *ledger)) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		l := &ledger{db: db, store: testStore{"holds"}}
		l.Ledger = reserve.New(db, l.store, reserve.Config{
			Name: "test hold", NotFound: errNotFound, Settled: errSettled, SweepBatch: sweepBatch,
		}, obs.Discard())
		fn(t, l)
	}, migrations, "reserve_test_version")
}

// account returns what user's account holds and uses on day.
func (l *ledger) account(t *testing.T, user, day string) (held, used int64) {
	t.Helper()
	err := l.db.R.QueryRowContext(t.Context(), `SELECT held, used FROM accounts WHERE user_id = $1 AND day = $2`, user, day).Scan(&held, &used)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	return held, used
}

func (l *ledger) wantAccount(t *testing.T, user, day string, held, used int64) {
	t.Helper()
	if h, u := l.account(t, user, day); h != held || u != used {
		t.Fatalf("account %s/%s: held %d used %d, want held %d used %d", user, day, h, u, held, used)
	}
}

// state returns the stored state of hold id, "" when there is none.
func (l *ledger) state(t *testing.T, id string) reserve.State {
	t.Helper()
	r, found, err := l.store.Get(t.Context(), l.db.R, id)
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		return ""
	}
	return r.State
}
