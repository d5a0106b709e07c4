package usage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/reel-video/reel/internal/platform/reserve"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// store is the usage service's SQL. It owns the usage_days, usage_limits,
// usage_reservations and usage_egress_batches tables; nobody else reads
// them.
type store struct {
	// Table answers Extend, Lapsed and Forget.
	reserve.Table
	db                        *sqldb.DB
	defaultUpload, defaultEgr int64
}

// dayRow is one user's counters on one day.
type dayRow struct {
	Day                                    string
	UploadUsed, UploadReserved, EgressUsed int64
}

// limits returns the user's effective daily limits.
func (s *store) limits(ctx context.Context, q sqldb.Querier, userID string) (upload, egress int64, err error) {
	var up, eg sql.NullInt64
	err = q.QueryRowContext(ctx, `SELECT daily_upload, daily_egress FROM usage_limits WHERE user_id = $1`, userID).Scan(&up, &eg)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, 0, fmt.Errorf("read usage limits: %w", err)
	}
	upload, egress = s.orDefaults(up, eg)
	return upload, egress, nil
}

// orDefaults returns a user's limits: the overrides stored, else the
// defaults.
func (s *store) orDefaults(up, eg sql.NullInt64) (upload, egress int64) {
	upload, egress = s.defaultUpload, s.defaultEgr
	if up.Valid {
		upload = up.Int64
	}
	if eg.Valid {
		egress = eg.Int64
	}
	return upload, egress
}

// today reads what limits and day read, in one statement: a read of one's
// usage is one round trip to the database, not two.
func (s *store) today(ctx context.Context, q sqldb.Querier, userID, day string) (d dayRow, upload, egress int64, err error) {
	var up, eg, used, reserved, egressUsed sql.NullInt64
	err = q.QueryRowContext(ctx, `SELECT l.daily_upload, l.daily_egress, d.upload_used, d.upload_reserved, d.egress_used
FROM (SELECT 1 AS one) AS one
LEFT JOIN usage_limits l ON l.user_id = $1
LEFT JOIN usage_days d ON d.user_id = $1 AND d.day = $2`, userID, day).Scan(&up, &eg, &used, &reserved, &egressUsed)
	if err != nil {
		return dayRow{}, 0, 0, fmt.Errorf("read usage limits and day: %w", err)
	}
	upload, egress = s.orDefaults(up, eg)
	return dayRow{Day: day, UploadUsed: used.Int64, UploadReserved: reserved.Int64, EgressUsed: egressUsed.Int64}, upload, egress, nil
}

// setLimits stores overrides; a nil value keeps the current one.
func (s *store) setLimits(ctx context.Context, q sqldb.Querier, userID string, upload, egress *int64, now int64) error {
	_, err := q.ExecContext(ctx, `INSERT INTO usage_limits (user_id, daily_upload, daily_egress, updated_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id) DO UPDATE SET
    daily_upload = COALESCE(excluded.daily_upload, usage_limits.daily_upload),
    daily_egress = COALESCE(excluded.daily_egress, usage_limits.daily_egress),
    updated_at = excluded.updated_at`, userID, upload, egress, now)
	if err != nil {
		return fmt.Errorf("set usage limits: %w", err)
	}
	return nil
}

// ensureDay creates the user's row for day if needed, so that the
// conditional UPDATE that follows has a row to decide on.
func (s *store) ensureDay(ctx context.Context, q sqldb.Querier, userID, day string, now int64) error {
	_, err := q.ExecContext(ctx, `INSERT INTO usage_days (user_id, day, updated_at) VALUES ($1, $2, $3)
ON CONFLICT (user_id, day) DO NOTHING`, userID, day, now)
	if err != nil {
		return fmt.Errorf("ensure usage day: %w", err)
	}
	return nil
}

// tryReserve adds bytes to the day's reserved upload volume if it fits
// under limit (negative: unlimited), in one statement.
func (s *store) tryReserve(ctx context.Context, q sqldb.Querier, userID, day string, bytes, limit, now int64) (bool, error) {
	var (
		res sql.Result
		err error
	)
	// The unlimited case is decided here rather than in SQL: a comparison
	// of a bare parameter with a literal would make PostgreSQL type the
	// parameter as a 32-bit integer.
	if limit < 0 {
		res, err = q.ExecContext(ctx, `UPDATE usage_days SET upload_reserved = upload_reserved + $1, updated_at = $2
WHERE user_id = $3 AND day = $4`, bytes, now, userID, day)
	} else {
		res, err = q.ExecContext(ctx, `UPDATE usage_days SET upload_reserved = upload_reserved + $1, updated_at = $2
WHERE user_id = $3 AND day = $4 AND upload_used + upload_reserved + $1 <= $5`, bytes, now, userID, day, limit)
	}
	return affectedOne(res, err, "reserve upload volume")
}

// tryAdmit turns reserved upload volume into used volume. An actual size
// above the reservation must fit under limit, checked in the same
// statement.
func (s *store) tryAdmit(ctx context.Context, q sqldb.Querier, userID, day string, reserved, actual, limit, now int64) (bool, error) {
	var (
		res sql.Result
		err error
	)
	if actual <= reserved || limit < 0 {
		res, err = q.ExecContext(ctx, `UPDATE usage_days SET upload_used = upload_used + $1, upload_reserved = upload_reserved - $2, updated_at = $3
WHERE user_id = $4 AND day = $5`, actual, reserved, now, userID, day)
	} else {
		res, err = q.ExecContext(ctx, `UPDATE usage_days SET upload_used = upload_used + $1, upload_reserved = upload_reserved - $2, updated_at = $3
WHERE user_id = $4 AND day = $5 AND upload_used + upload_reserved - $2 + $1 <= $6`, actual, reserved, now, userID, day, limit)
	}
	return affectedOne(res, err, "commit upload volume")
}

// addEgress adds delivered bytes to the user's day.
func (s *store) addEgress(ctx context.Context, q sqldb.Querier, userID, day string, bytes, now int64) error {
	_, err := q.ExecContext(ctx, `INSERT INTO usage_days (user_id, day, egress_used, updated_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id, day) DO UPDATE SET egress_used = usage_days.egress_used + excluded.egress_used, updated_at = excluded.updated_at`,
		userID, day, bytes, now)
	if err != nil {
		return fmt.Errorf("add egress: %w", err)
	}
	return nil
}

// claimBatch records an egress batch id and reports false if it was
// recorded before (the batch is a retry and must not count again).
func (s *store) claimBatch(ctx context.Context, q sqldb.Querier, id string, now int64) (bool, error) {
	res, err := q.ExecContext(ctx, `INSERT INTO usage_egress_batches (id, applied_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, id, now)
	return affectedOne(res, err, "record egress batch")
}

// day reads one user's counters on one day (zero without a row).
func (s *store) day(ctx context.Context, q sqldb.Querier, userID, day string) (dayRow, error) {
	d := dayRow{Day: day}
	err := q.QueryRowContext(ctx, `SELECT upload_used, upload_reserved, egress_used FROM usage_days WHERE user_id = $1 AND day = $2`, userID, day).
		Scan(&d.UploadUsed, &d.UploadReserved, &d.EgressUsed)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return dayRow{}, fmt.Errorf("read usage day: %w", err)
	}
	return d, nil
}

// days reads the user's rows from..to (inclusive), oldest first; days
// without activity have no row.
func (s *store) days(ctx context.Context, userID, from, to string) ([]dayRow, error) {
	rows, err := s.db.R.QueryContext(ctx, `SELECT day, upload_used, upload_reserved, egress_used FROM usage_days
WHERE user_id = $1 AND day >= $2 AND day <= $3 ORDER BY day`, userID, from, to)
	if err != nil {
		return nil, fmt.Errorf("read usage days: %w", err)
	}
	defer rows.Close()
	var out []dayRow
	for rows.Next() {
		var d dayRow
		if err := rows.Scan(&d.Day, &d.UploadUsed, &d.UploadReserved, &d.EgressUsed); err != nil {
			return nil, fmt.Errorf("read usage days: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read usage days: %w", err)
	}
	return out, nil
}

var _ reserve.Store = (*store)(nil)

// Get implements reserve.Store.
func (s *store) Get(ctx context.Context, q sqldb.Querier, id string) (reserve.Record, bool, error) {
	var (
		r         reserve.Record
		actual    sql.NullInt64
		expiresAt int64
	)
	err := q.QueryRowContext(ctx, `SELECT id, user_id, day, bytes, state, actual, expires_at FROM usage_reservations WHERE id = $1`, id).
		Scan(&r.ID, &r.UserID, &r.Day, &r.Bytes, &r.State, &actual, &expiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return reserve.Record{}, false, nil
	}
	if err != nil {
		return reserve.Record{}, false, fmt.Errorf("read upload reservation: %w", err)
	}
	r.ExpiresAt = fromMicros(expiresAt)
	r.Settlement.Actual = actual.Int64
	return r, true, nil
}

// Insert implements reserve.Store.
func (s *store) Insert(ctx context.Context, q sqldb.Querier, h reserve.Hold, now time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO usage_reservations (id, user_id, day, bytes, state, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)`, h.ID, h.UserID, h.Day, h.Bytes, string(reserve.Held), micros(now), micros(h.ExpiresAt))
	if err != nil {
		return fmt.Errorf("insert upload reservation: %w", err)
	}
	return nil
}

// Settle implements reserve.Store. Only the actual size is recorded: an
// upload's volume goes to no object.
func (s *store) Settle(ctx context.Context, q sqldb.Querier, id string, from, to reserve.State, st *reserve.Settlement, now time.Time) (reserve.Hold, bool, error) {
	var actual *int64
	if st != nil {
		actual = &st.Actual
	}
	h := reserve.Hold{ID: id}
	err := q.QueryRowContext(ctx, `UPDATE usage_reservations SET state = $1, actual = $2, settled_at = $3
WHERE id = $4 AND state = $5 RETURNING user_id, day, bytes`, string(to), actual, micros(now), id, string(from)).Scan(&h.UserID, &h.Day, &h.Bytes)
	if errors.Is(err, sql.ErrNoRows) {
		return reserve.Hold{}, false, nil
	}
	if err != nil {
		return reserve.Hold{}, false, fmt.Errorf("settle upload reservation: %w", err)
	}
	return h, true, nil
}

// Expire implements reserve.Store.
func (s *store) Expire(ctx context.Context, q sqldb.Querier, now time.Time, limit int) ([]reserve.Hold, error) {
	rows, err := q.QueryContext(ctx, fmt.Sprintf(`UPDATE usage_reservations SET state = 'expired', settled_at = $1
WHERE id IN (SELECT id FROM usage_reservations WHERE state = 'held' AND expires_at <= $1 ORDER BY expires_at LIMIT %d)
AND state = 'held' RETURNING id, user_id, day, bytes`, limit), micros(now))
	if err != nil {
		return nil, fmt.Errorf("expire upload reservations: %w", err)
	}
	defer rows.Close()
	var out []reserve.Hold
	for rows.Next() {
		var h reserve.Hold
		if err := rows.Scan(&h.ID, &h.UserID, &h.Day, &h.Bytes); err != nil {
			return nil, fmt.Errorf("expire upload reservations: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("expire upload reservations: %w", err)
	}
	return out, nil
}

// GiveBack implements reserve.Store: reserved upload volume goes back to
// the day it was reserved on.
func (s *store) GiveBack(ctx context.Context, q sqldb.Querier, userID, day string, bytes int64, now time.Time) error {
	_, err := q.ExecContext(ctx, `UPDATE usage_days SET upload_reserved = upload_reserved - $1, updated_at = $2
WHERE user_id = $3 AND day = $4`, bytes, micros(now), userID, day)
	if err != nil {
		return fmt.Errorf("release upload volume: %w", err)
	}
	return nil
}

// forgetBatches deletes the egress batch ids applied before cutoff.
func (s *store) forgetBatches(ctx context.Context, cutoff int64) error {
	if _, err := s.db.W.ExecContext(ctx, `DELETE FROM usage_egress_batches WHERE applied_at < $1`, cutoff); err != nil {
		return fmt.Errorf("delete old egress batches: %w", err)
	}
	return nil
}

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
