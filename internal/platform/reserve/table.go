package reserve

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Table is the name of a service's reservations table, for the parts of
// Store that every such table answers alike: its holds have the columns
// id, state, bytes and created_at, expires_at, settled_at in Unix
// microseconds. A service's store embeds it. The name is the service's
// constant, never input: it is written into the statements.
type Table string

// Lapsed implements Store.
func (t Table) Lapsed(ctx context.Context, q sqldb.Querier, before time.Time) (Lapsed, error) {
	var l Lapsed
	err := q.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM `+string(t)+` WHERE state = 'held' AND expires_at < $1`,
		before.UnixMicro()).Scan(&l.Count, &l.Bytes)
	if err != nil {
		return Lapsed{}, fmt.Errorf("count lapsed %s: %w", t, err)
	}
	return l, nil
}

// Extend implements Store.
func (t Table) Extend(ctx context.Context, q sqldb.Querier, id string, until time.Time, maxLife time.Duration) (time.Time, bool, error) {
	var exp int64
	err := q.QueryRowContext(ctx, `UPDATE `+string(t)+`
SET expires_at = CASE WHEN $1 < created_at + $2 THEN $1 ELSE created_at + $2 END
WHERE id = $3 AND state = 'held' RETURNING expires_at`, until.UnixMicro(), maxLife.Microseconds(), id).Scan(&exp)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("renew a hold in %s: %w", t, err)
	}
	return time.UnixMicro(exp).UTC(), true, nil
}

// Forget implements Store.
func (t Table) Forget(ctx context.Context, q sqldb.Querier, cutoff time.Time) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM `+string(t)+` WHERE state <> 'held' AND settled_at < $1`, cutoff.UnixMicro()); err != nil {
		return fmt.Errorf("delete settled holds from %s: %w", t, err)
	}
	return nil
}
