package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/reel-video/reel/internal/platform/reserve"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// store is the storage service's SQL. It owns the storage_accounts,
// storage_reservations and storage_objects tables; nobody else reads them.
// Every method takes the Querier to run on, so the service decides what
// happens in one transaction.
type store struct {
	// Table answers Extend, Lapsed and Forget.
	reserve.Table
	db *sqldb.DB
	// defaultQuota replaces a NULL quota column; it is a parameter, not
	// stored, so that changing REEL_STORAGE_QUOTA applies to every user
	// without an override.
	defaultQuota int64
}

// ensureAccount creates the user's account row if it does not exist, so
// that the conditional UPDATE that follows always has a row to decide on.
func (s *store) ensureAccount(ctx context.Context, q sqldb.Querier, userID string, now int64) error {
	_, err := q.ExecContext(ctx, `INSERT INTO storage_accounts (user_id, used, reserved, updated_at) VALUES ($1, 0, 0, $2)
ON CONFLICT (user_id) DO NOTHING`, userID, now)
	if err != nil {
		return fmt.Errorf("ensure storage account: %w", err)
	}
	return nil
}

// tryReserve adds bytes to the user's reserved bytes if they fit under the
// quota, in one statement, and reports whether they did.
func (s *store) tryReserve(ctx context.Context, q sqldb.Querier, userID string, bytes, now int64) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE storage_accounts SET reserved = reserved + $1, updated_at = $2
WHERE user_id = $3 AND (COALESCE(quota, $4) < 0 OR used + reserved + $1 <= COALESCE(quota, $4))`,
		bytes, now, userID, s.defaultQuota)
	return affectedOne(res, err, "reserve storage")
}

// tryAdmit turns reservedBytes of the user's reserved bytes into actual
// stored bytes. When actual exceeds the reservation, the excess must fit
// under the quota like a reservation would (checked in the same statement);
// otherwise nothing changes and it reports false.
func (s *store) tryAdmit(ctx context.Context, q sqldb.Querier, userID string, reservedBytes, actual, now int64) (bool, error) {
	var (
		res sql.Result
		err error
	)
	if actual <= reservedBytes {
		// Within the reservation: always fits, since the reservation did.
		res, err = q.ExecContext(ctx, `UPDATE storage_accounts SET used = used + $1, reserved = reserved - $2, updated_at = $3
WHERE user_id = $4`, actual, reservedBytes, now, userID)
	} else {
		res, err = q.ExecContext(ctx, `UPDATE storage_accounts SET used = used + $1, reserved = reserved - $2, updated_at = $3
WHERE user_id = $4 AND (COALESCE(quota, $5) < 0 OR used + reserved - $2 + $1 <= COALESCE(quota, $5))`,
			actual, reservedBytes, now, userID, s.defaultQuota)
	}
	return affectedOne(res, err, "commit storage")
}

// addUsed adds bytes to the user's stored bytes unconditionally (Charge)
// or takes them away (Free, with a negative delta).
func (s *store) addUsed(ctx context.Context, q sqldb.Querier, userID string, delta, now int64) error {
	_, err := q.ExecContext(ctx, `UPDATE storage_accounts SET used = used + $1, updated_at = $2 WHERE user_id = $3`, delta, now, userID)
	if err != nil {
		return fmt.Errorf("update stored bytes: %w", err)
	}
	return nil
}

// account reads a user's figures; a user without a row has stored nothing
// and has the default quota.
func (s *store) account(ctx context.Context, q sqldb.Querier, userID string) (Usage, error) {
	u := Usage{QuotaBytes: s.defaultQuota}
	var quota sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT used, reserved, quota FROM storage_accounts WHERE user_id = $1`, userID).
		Scan(&u.UsedBytes, &u.ReservedBytes, &quota)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Usage{}, fmt.Errorf("read storage account: %w", err)
	}
	if quota.Valid {
		u.QuotaBytes = quota.Int64
	}
	u.AvailableBytes = available(u)
	return u, nil
}

// setQuota stores a per-user quota override.
func (s *store) setQuota(ctx context.Context, q sqldb.Querier, userID string, quota, now int64) error {
	_, err := q.ExecContext(ctx, `INSERT INTO storage_accounts (user_id, used, reserved, quota, updated_at) VALUES ($1, 0, 0, $2, $3)
ON CONFLICT (user_id) DO UPDATE SET quota = excluded.quota, updated_at = excluded.updated_at`, userID, quota, now)
	if err != nil {
		return fmt.Errorf("set storage quota: %w", err)
	}
	return nil
}

var _ reserve.Store = (*store)(nil)

// Get implements reserve.Store.
func (s *store) Get(ctx context.Context, q sqldb.Querier, id string) (reserve.Record, bool, error) {
	var (
		r         reserve.Record
		object    sql.NullString
		actual    sql.NullInt64
		expiresAt int64
	)
	err := q.QueryRowContext(ctx, `SELECT id, user_id, bytes, state, object, actual, expires_at
FROM storage_reservations WHERE id = $1`, id).
		Scan(&r.ID, &r.UserID, &r.Bytes, &r.State, &object, &actual, &expiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return reserve.Record{}, false, nil
	}
	if err != nil {
		return reserve.Record{}, false, fmt.Errorf("read reservation: %w", err)
	}
	r.ExpiresAt = fromMicros(expiresAt)
	r.Settlement = reserve.Settlement{Actual: actual.Int64, Object: object.String}
	return r, true, nil
}

// Insert implements reserve.Store.
func (s *store) Insert(ctx context.Context, q sqldb.Querier, h reserve.Hold, now time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO storage_reservations (id, user_id, bytes, state, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6)`, h.ID, h.UserID, h.Bytes, string(reserve.Held), micros(now), micros(h.ExpiresAt))
	if err != nil {
		return fmt.Errorf("insert reservation: %w", err)
	}
	return nil
}

// Settle implements reserve.Store.
func (s *store) Settle(ctx context.Context, q sqldb.Querier, id string, from, to reserve.State, st *reserve.Settlement, now time.Time) (reserve.Hold, bool, error) {
	var (
		object *string
		actual *int64
	)
	if st != nil {
		object, actual = &st.Object, &st.Actual
	}
	h := reserve.Hold{ID: id}
	err := q.QueryRowContext(ctx, `UPDATE storage_reservations SET state = $1, object = $2, actual = $3, settled_at = $4
WHERE id = $5 AND state = $6 RETURNING user_id, bytes`, string(to), object, actual, micros(now), id, string(from)).Scan(&h.UserID, &h.Bytes)
	if errors.Is(err, sql.ErrNoRows) {
		return reserve.Hold{}, false, nil
	}
	if err != nil {
		return reserve.Hold{}, false, fmt.Errorf("settle reservation: %w", err)
	}
	return h, true, nil
}

// Expire implements reserve.Store.
func (s *store) Expire(ctx context.Context, q sqldb.Querier, now time.Time, limit int) ([]reserve.Hold, error) {
	rows, err := q.QueryContext(ctx, fmt.Sprintf(`UPDATE storage_reservations SET state = 'expired', settled_at = $1
WHERE id IN (SELECT id FROM storage_reservations WHERE state = 'held' AND expires_at <= $1 ORDER BY expires_at LIMIT %d)
AND state = 'held' RETURNING id, user_id, bytes`, limit), micros(now))
	if err != nil {
		return nil, fmt.Errorf("expire reservations: %w", err)
	}
	defer rows.Close()
	var out []reserve.Hold
	for rows.Next() {
		var h reserve.Hold
		if err := rows.Scan(&h.ID, &h.UserID, &h.Bytes); err != nil {
			return nil, fmt.Errorf("expire reservations: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("expire reservations: %w", err)
	}
	return out, nil
}

// GiveBack implements reserve.Store: reserved bytes go back to the
// user's account (the quota has no days).
func (s *store) GiveBack(ctx context.Context, q sqldb.Querier, userID, _ string, bytes int64, now time.Time) error {
	_, err := q.ExecContext(ctx, `UPDATE storage_accounts SET reserved = reserved - $1, updated_at = $2 WHERE user_id = $3`, bytes, micros(now), userID)
	if err != nil {
		return fmt.Errorf("release reserved bytes: %w", err)
	}
	return nil
}

// addObject adds bytes to an object, creating it if needed.
func (s *store) addObject(ctx context.Context, q sqldb.Querier, userID, object string, bytes, now int64) error {
	_, err := q.ExecContext(ctx, `INSERT INTO storage_objects (user_id, object, bytes, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
ON CONFLICT (user_id, object) DO UPDATE SET bytes = storage_objects.bytes + excluded.bytes, updated_at = excluded.updated_at`,
		userID, object, bytes, now)
	if err != nil {
		return fmt.Errorf("record object: %w", err)
	}
	return nil
}

// deleteObject removes an object and returns its bytes, or 0 and false
// when there is no such object (already freed).
func (s *store) deleteObject(ctx context.Context, q sqldb.Querier, userID, object string) (int64, bool, error) {
	var b int64
	err := q.QueryRowContext(ctx, `DELETE FROM storage_objects WHERE user_id = $1 AND object = $2 RETURNING bytes`, userID, object).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("delete object: %w", err)
	}
	return b, true, nil
}

// affectedOne reports whether an UPDATE changed a row.
func affectedOne(res sql.Result, err error, what string) (bool, error) {
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("%s: rows affected: %w", what, err)
	}
	return n == 1, nil
}
