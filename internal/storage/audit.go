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

// What the consistency check (reel check, run by the videos service) reads
// and corrects: each account's stored bytes and objects, the reservations
// the sweep has left past their time.

// MaxAuditPage bounds the accounts or objects one Accounts or Objects
// call returns.
const MaxAuditPage = 1000

// Accounts lists the accounts whose user id sorts after after, up to
// limit (at most MaxAuditPage), in user id order, with the bytes each
// counts as used and the sum of its objects.
func (s *Service) Accounts(ctx context.Context, after string, limit int) ([]reserve.Account, error) {
	if err := checkPage(limit); err != nil {
		return nil, err
	}
	out, err := s.store.accounts(ctx, s.db.R, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list storage accounts: %w", err)
	}
	return out, nil
}

// Objects lists the user's objects whose key sorts after after, up to
// limit (at most MaxAuditPage), in key order.
func (s *Service) Objects(ctx context.Context, userID, after string, limit int) ([]reserve.Object, error) {
	if err := reserve.CheckUser(userID); err != nil {
		return nil, err
	}
	if err := checkPage(limit); err != nil {
		return nil, err
	}
	out, err := s.store.objects(ctx, s.db.R, userID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list storage objects: %w", err)
	}
	return out, nil
}

func checkPage(limit int) error {
	if limit <= 0 || limit > MaxAuditPage {
		return reserve.Invalid("limit", fmt.Sprintf("must be between 1 and %d", MaxAuditPage))
	}
	return nil
}

// Correct applies corrections to the user's objects, each only if the
// object still has the bytes the check saw (others are skipped: the
// object changed meanwhile, and the next check looks again), and sets
// the bytes the account counts as used to the sum of its objects. It
// returns how many corrections applied.
func (s *Service) Correct(ctx context.Context, userID string, fixes []reserve.Correction) (int, error) {
	if err := reserve.CheckUser(userID); err != nil {
		return 0, err
	}
	for _, f := range fixes {
		if err := checkObject(f.Key); err != nil {
			return 0, err
		}
		if f.Was < -1 || f.Bytes < -1 || f.Was > MaxBytes || f.Bytes > MaxBytes {
			return 0, reserve.Invalid("bytes", "must be a byte count, or -1 for an absent object")
		}
	}
	now := micros(s.now())
	applied := 0
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		applied = 0
		// The account's row first: it is what every other change of the
		// user's figures locks first too (or, for Free, before it ends),
		// so the sum taken below is not overtaken.
		if err := s.store.ensureAccount(ctx, tx, userID, now); err != nil {
			return err
		}
		if err := s.store.addUsed(ctx, tx, userID, 0, now); err != nil {
			return err
		}
		for _, f := range fixes {
			ok, err := s.store.correctObject(ctx, tx, userID, f, now)
			if err != nil {
				return err
			}
			if ok {
				applied++
			}
		}
		return s.store.recount(ctx, tx, userID, now)
	})
	if err != nil {
		return 0, fmt.Errorf("correct storage account: %w", err)
	}
	s.log.Warn("storage account corrected by the check", "user", userID, "corrections", applied, "of", len(fixes))
	return applied, nil
}

// Lapsed counts the reservations still held more than grace after their
// expiry: the sweep releases them within a minute when it runs.
func (s *Service) Lapsed(ctx context.Context, grace time.Duration) (reserve.Lapsed, error) {
	return s.ledger.Lapsed(ctx, s.now(), grace)
}

// accounts reads a page of accounts with their objects' sums. One
// statement is one snapshot on both engines, so an account's used bytes
// and its objects agree unless the ledger is wrong.
func (s *store) accounts(ctx context.Context, q sqldb.Querier, after string, limit int) ([]reserve.Account, error) {
	rows, err := q.QueryContext(ctx, `SELECT a.user_id, a.used, a.updated_at, COALESCE(SUM(o.bytes), 0), COUNT(o.object), COALESCE(MAX(o.updated_at), 0)
FROM storage_accounts a LEFT JOIN storage_objects o ON o.user_id = a.user_id
WHERE a.user_id > $1 GROUP BY a.user_id, a.used, a.updated_at ORDER BY a.user_id LIMIT $2`, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []reserve.Account
	for rows.Next() {
		var (
			a                  reserve.Account
			updated, objChange int64
		)
		if err := rows.Scan(&a.UserID, &a.UsedBytes, &updated, &a.ObjectBytes, &a.Objects, &objChange); err != nil {
			return nil, err
		}
		a.Changed = fromMicros(max(updated, objChange))
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *store) objects(ctx context.Context, q sqldb.Querier, userID, after string, limit int) ([]reserve.Object, error) {
	rows, err := q.QueryContext(ctx, `SELECT object, bytes, updated_at FROM storage_objects
WHERE user_id = $1 AND object > $2 ORDER BY object LIMIT $3`, userID, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []reserve.Object
	for rows.Next() {
		var (
			o       reserve.Object
			updated int64
		)
		if err := rows.Scan(&o.Key, &o.Bytes, &updated); err != nil {
			return nil, err
		}
		o.UpdatedAt = fromMicros(updated)
		out = append(out, o)
	}
	return out, rows.Err()
}

// correctObject applies f if the object's bytes are still f.Was.
func (s *store) correctObject(ctx context.Context, q sqldb.Querier, userID string, f reserve.Correction, now int64) (bool, error) {
	var (
		res sql.Result
		err error
	)
	switch {
	case f.Was < 0 && f.Bytes < 0:
		return false, nil
	case f.Was < 0:
		res, err = q.ExecContext(ctx, `INSERT INTO storage_objects (user_id, object, bytes, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
ON CONFLICT (user_id, object) DO NOTHING`, userID, f.Key, f.Bytes, now)
	case f.Bytes < 0:
		res, err = q.ExecContext(ctx, `DELETE FROM storage_objects WHERE user_id = $1 AND object = $2 AND bytes = $3`, userID, f.Key, f.Was)
	default:
		res, err = q.ExecContext(ctx, `UPDATE storage_objects SET bytes = $1, updated_at = $2 WHERE user_id = $3 AND object = $4 AND bytes = $5`,
			f.Bytes, now, userID, f.Key, f.Was)
	}
	return affectedOne(res, err, "correct object")
}

// recount sets the account's used bytes to the sum of its objects.
func (s *store) recount(ctx context.Context, q sqldb.Querier, userID string, now int64) error {
	var sum int64
	err := q.QueryRowContext(ctx, `SELECT COALESCE(SUM(bytes), 0) FROM storage_objects WHERE user_id = $1`, userID).Scan(&sum)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sum objects: %w", err)
	}
	_, err = q.ExecContext(ctx, `UPDATE storage_accounts SET used = $1, updated_at = $2 WHERE user_id = $3`, sum, now, userID)
	if err != nil {
		return fmt.Errorf("recount stored bytes: %w", err)
	}
	return nil
}
