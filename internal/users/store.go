package users

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Store is the users service's SQL. It owns the users, refresh_tokens,
// signing_keys and login_failures tables; nobody else reads them.
type Store struct {
	db *sqldb.DB
	// attempts serialises login attempts per subject in this process
	// (addAttempt).
	attempts keyLocks
}

// NewStore returns a store on db (already migrated).
func NewStore(db *sqldb.DB) *Store { return &Store{db: db} }

type userRow struct {
	User
	PasswordHash string
}

const userCols = `id, email, username, password_hash, role, disabled, created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanUser(s scanner) (userRow, error) {
	var u userRow
	var created, updated int64
	err := s.Scan(&u.ID, &u.Email, &u.Username, &u.PasswordHash, &u.Role, &u.Disabled, &created, &updated)
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return u, err
}

func (s *Store) insertUser(ctx context.Context, q sqldb.Querier, u userRow) error {
	_, err := q.ExecContext(ctx, `INSERT INTO users (`+userCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		u.ID, u.Email, u.Username, u.PasswordHash, u.Role, u.Disabled, micros(u.CreatedAt), micros(u.UpdatedAt))
	if sqldb.IsUniqueViolation(err) {
		return ErrEmailTaken
	}
	if err != nil {
		return fmt.Errorf("insert user: %w", err)
	}
	return nil
}

func (s *Store) userByEmail(ctx context.Context, email string) (userRow, error) {
	return s.oneUser(ctx, s.db.R, `SELECT `+userCols+` FROM users WHERE email = $1`, email)
}

func (s *Store) userByID(ctx context.Context, q sqldb.Querier, id string) (userRow, error) {
	return s.oneUser(ctx, q, `SELECT `+userCols+` FROM users WHERE id = $1`, id)
}

func (s *Store) oneUser(ctx context.Context, q sqldb.Querier, query string, arg any) (userRow, error) {
	u, err := scanUser(q.QueryRowContext(ctx, query, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return userRow{}, ErrUserNotFound
	}
	if err != nil {
		return userRow{}, fmt.Errorf("select user: %w", err)
	}
	return u, nil
}

func (s *Store) countAdmins(ctx context.Context) (int, error) {
	var n int
	err := s.db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE role = 'admin'`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count admins: %w", err)
	}
	return n, nil
}

func (s *Store) updateUser(ctx context.Context, q sqldb.Querier, u userRow) error {
	_, err := q.ExecContext(ctx, `UPDATE users SET username = $1, password_hash = $2, role = $3, disabled = $4, updated_at = $5 WHERE id = $6`,
		u.Username, u.PasswordHash, u.Role, u.Disabled, micros(u.UpdatedAt), u.ID)
	if err != nil {
		return fmt.Errorf("update user: %w", err)
	}
	return s.moveVersion(ctx, q)
}

// listUsers pages through the users, newest first; with contains (lower
// case) only those whose email or username contains it.
func (s *Store) listUsers(ctx context.Context, contains string, req page.Request) ([]User, error) {
	var where []string
	var args []any
	if contains != "" {
		args = append(args, sqldb.Contains(contains))
		where = append(where, `(email LIKE $1 ESCAPE '\' OR LOWER(username) LIKE $1 ESCAPE '\')`)
	}
	if !req.After.Zero() {
		args = append(args, req.After.T, req.After.ID)
		where = append(where, fmt.Sprintf(`(created_at, id) < ($%d, $%d)`, len(args)-1, len(args)))
	}
	q := `SELECT ` + userCols + ` FROM users`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT %d`, req.Limit+1)
	rows, err := s.db.R.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("scan user: %w", err)
		}
		out = append(out, u.User)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// refreshRow is a stored refresh token.
type refreshRow struct {
	ID, FamilyID, UserID string
	ExpiresAt            int64
	UsedAt, RevokedAt    sql.NullInt64
}

func (s *Store) insertRefresh(ctx context.Context, q sqldb.Querier, id, hash, family, userID string, now, expires int64) error {
	_, err := q.ExecContext(ctx, `INSERT INTO refresh_tokens (id, token_hash, family_id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		id, hash, family, userID, now, expires)
	if err != nil {
		return fmt.Errorf("insert refresh token: %w", err)
	}
	return nil
}

func (s *Store) refreshByHash(ctx context.Context, q sqldb.Querier, hash string) (refreshRow, error) {
	var r refreshRow
	err := q.QueryRowContext(ctx, `SELECT id, family_id, user_id, expires_at, used_at, revoked_at FROM refresh_tokens WHERE token_hash = $1`, hash).
		Scan(&r.ID, &r.FamilyID, &r.UserID, &r.ExpiresAt, &r.UsedAt, &r.RevokedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrInvalidRefresh
	}
	if err != nil {
		return r, fmt.Errorf("select refresh token: %w", err)
	}
	return r, nil
}

// markUsed marks a token rotated; false when another request rotated it
// first, which must count as reuse.
func (s *Store) markUsed(ctx context.Context, q sqldb.Querier, id string, now int64) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL`, now, id)
	if err != nil {
		return false, fmt.Errorf("mark refresh token used: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (s *Store) revokeFamily(ctx context.Context, q sqldb.Querier, family string, now int64) error {
	_, err := q.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL`, now, family)
	if err != nil {
		return fmt.Errorf("revoke token family: %w", err)
	}
	return nil
}

func (s *Store) revokeUserTokens(ctx context.Context, q sqldb.Querier, userID string, now int64) error {
	_, err := q.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL`, now, userID)
	if err != nil {
		return fmt.Errorf("revoke user tokens: %w", err)
	}
	return nil
}

func (s *Store) deleteExpiredRefresh(ctx context.Context, before int64) (int64, error) {
	res, err := s.db.W.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE expires_at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("delete expired refresh tokens: %w", err)
	}
	return res.RowsAffected()
}

// Login throttling.

// attemptLimit is how many recent attempts a subject may have.
type attemptLimit struct {
	subject string
	max     int
}

// errThrottled is addAttempt's refusal: a limit is reached.
var errThrottled = errors.New("login throttled")

// addAttempt records an attempt under every subject, unless one of them
// already has its max of attempts after since: then it records nothing and
// returns errThrottled with the oldest of that subject's attempts. Counting
// and recording are one transaction, and concurrent attempts on a subject
// are serialised: in the process first (keyLocks, without a connection),
// then across processes by SQLite's one writer or PostgreSQL's transaction
// lock per subject, both taken in sorted order so that two attempts cannot
// deadlock.
func (s *Store) addAttempt(ctx context.Context, limits []attemptLimit, at, since int64) (ids []string, oldest int64, err error) {
	limits = slices.Clone(limits)
	slices.SortFunc(limits, func(a, b attemptLimit) int { return strings.Compare(a.subject, b.subject) })
	subjects := make([]string, len(limits))
	for i, l := range limits {
		subjects[i] = l.subject
	}
	unlock, err := s.attempts.lock(ctx, slices.Compact(subjects))
	if err != nil {
		return nil, 0, fmt.Errorf("record login attempt: %w", err)
	}
	defer unlock()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		ids, oldest = nil, 0
		for _, l := range limits {
			if s.db.Dialect == sqldb.Postgres {
				if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, subjectLock(l.subject)); err != nil {
					return err
				}
			}
			var n int
			var first sql.NullInt64
			err := tx.QueryRowContext(ctx, `SELECT COUNT(*), MIN(at) FROM login_failures WHERE subject = $1 AND at > $2`, l.subject, since).Scan(&n, &first)
			if err != nil {
				return err
			}
			if n >= l.max {
				oldest = first.Int64
				return errThrottled
			}
		}
		for _, l := range limits {
			id := uuid.NewString()
			if _, err := tx.ExecContext(ctx, `INSERT INTO login_failures (id, subject, at) VALUES ($1, $2, $3)`, id, l.subject, at); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errThrottled) {
		return nil, 0, fmt.Errorf("record login attempt: %w", err)
	}
	return ids, oldest, err
}

// subjectLock is a PostgreSQL advisory lock key for a throttling subject.
func subjectLock(subject string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("reel/users/login:" + subject))
	return int64(h.Sum64())
}

// forgetAttempt removes a successful attempt's records and every record
// of the subjects in clear (a login's earlier failures from its address).
// It runs in the caller's transaction (the one that issues the tokens or
// creates the account), so a successful login costs no write of its own.
func (s *Store) forgetAttempt(ctx context.Context, q sqldb.Querier, ids []string, clear ...string) error {
	for _, id := range ids {
		if _, err := q.ExecContext(ctx, `DELETE FROM login_failures WHERE id = $1`, id); err != nil {
			return fmt.Errorf("forget login attempt: %w", err)
		}
	}
	for _, subject := range clear {
		if _, err := q.ExecContext(ctx, `DELETE FROM login_failures WHERE subject = $1`, subject); err != nil {
			return fmt.Errorf("forget login failures: %w", err)
		}
	}
	return nil
}

func (s *Store) deleteOldFailures(ctx context.Context, before int64) error {
	_, err := s.db.W.ExecContext(ctx, `DELETE FROM login_failures WHERE at < $1`, before)
	if err != nil {
		return fmt.Errorf("delete old login failures: %w", err)
	}
	return nil
}

// Signing keys.

type keyRow struct {
	Kid, Private string
	CreatedAt    int64
	RetiredAt    sql.NullInt64
}

func (s *Store) keys(ctx context.Context) ([]keyRow, error) {
	rows, err := s.db.R.QueryContext(ctx, `SELECT kid, private_key, created_at, retired_at FROM signing_keys ORDER BY created_at DESC, kid DESC`)
	if err != nil {
		return nil, fmt.Errorf("select signing keys: %w", err)
	}
	defer rows.Close()
	var out []keyRow
	for rows.Next() {
		var k keyRow
		if err := rows.Scan(&k.Kid, &k.Private, &k.CreatedAt, &k.RetiredAt); err != nil {
			return nil, fmt.Errorf("scan signing key: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

func (s *Store) insertKey(ctx context.Context, k keyRow) error {
	_, err := s.db.W.ExecContext(ctx, `INSERT INTO signing_keys (kid, private_key, created_at) VALUES ($1, $2, $3)`, k.Kid, k.Private, k.CreatedAt)
	if err != nil {
		return fmt.Errorf("insert signing key: %w", err)
	}
	return nil
}

// retireKeys retires the keys older than the given one. Only older ones:
// two replicas creating a first key at once then leave the newer active
// instead of retiring each other's.
func (s *Store) retireKeys(ctx context.Context, newest keyRow, at int64) error {
	_, err := s.db.W.ExecContext(ctx, `UPDATE signing_keys SET retired_at = $1 WHERE (created_at, kid) < ($2, $3) AND retired_at IS NULL`, at, newest.CreatedAt, newest.Kid)
	if err != nil {
		return fmt.Errorf("retire signing keys: %w", err)
	}
	return nil
}

func (s *Store) deleteRetiredKeys(ctx context.Context, before int64) error {
	_, err := s.db.W.ExecContext(ctx, `DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1`, before)
	if err != nil {
		return fmt.Errorf("delete retired keys: %w", err)
	}
	return nil
}
