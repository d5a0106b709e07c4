package users

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// ErrSessionNotFound answers a revocation of a session that is not the
// caller's or has ended already.
var ErrSessionNotFound = errs.New(errs.NotFound, "session_not_found", "no such session")

// Session is one signed-in client: a refresh-token family (the chain born
// from one login) that still holds a live token.
type Session struct {
	ID        string    `json:"id"` // the family id
	StartedAt time.Time `json:"started_at"`
	// LastUsedAt is when the live token was issued: the login or the
	// last refresh.
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// maxSessions bounds a listing; a user has one per signed-in client.
const maxSessions = 100

// HasAdmin reports whether any admin account exists, enabled or not: the
// web app offers its first-run setup only while none does.
func (s *Service) HasAdmin(ctx context.Context) (bool, error) {
	n, err := s.store.countAdmins(ctx)
	return n > 0, err
}

// Sessions lists the user's live sessions, most recently used first.
func (s *Service) Sessions(ctx context.Context, userID string) ([]Session, error) {
	out, err := s.store.sessions(ctx, userID, micros(s.now()))
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return out, nil
}

// RevokeSession ends one of the user's sessions (its whole family).
func (s *Service) RevokeSession(ctx context.Context, userID, sessionID string) error {
	if !plainText(sessionID) || len(sessionID) > 64 {
		return ErrSessionNotFound
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		n, err := s.store.revokeUserFamily(ctx, tx, userID, sessionID, micros(s.now()))
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrSessionNotFound
		}
		return s.events.Add(ctx, tx, s.event(ctx, "LOGOUT", outbox.Success, "signed out a session").On(userID).With("session", sessionID))
	})
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// RevokeOtherSessions ends every session of the user but the one that
// holds refresh (which must be the user's and live), and returns how many
// it ended.
func (s *Service) RevokeOtherSessions(ctx context.Context, userID, refresh string) (int, error) {
	if refresh == "" || len(refresh) > 256 {
		return 0, ErrInvalidRefresh
	}
	var n int
	now := micros(s.now())
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		r, err := s.store.refreshByHash(ctx, tx, hashToken(refresh))
		if err != nil {
			return err
		}
		if r.UserID != userID || r.UsedAt.Valid || r.RevokedAt.Valid || r.ExpiresAt <= now {
			return ErrInvalidRefresh
		}
		if n, err = s.store.revokeOtherFamilies(ctx, tx, userID, r.FamilyID, now); err != nil || n == 0 {
			return err
		}
		return s.events.Add(ctx, tx, s.event(ctx, "LOGOUT", outbox.Success, fmt.Sprintf("signed out %d other sessions", n)).On(userID))
	})
	if err != nil {
		return 0, fmt.Errorf("revoke other sessions: %w", err)
	}
	return n, nil
}

// maxSearch bounds the text of a user search.
const maxSearch = 200

// Search pages through the users whose email or username contains q
// (case-insensitive for ASCII letters; all users when q is empty), newest
// first.
func (s *Service) Search(ctx context.Context, q string, req page.Request) (page.Page[User], error) {
	q = strings.TrimSpace(q)
	if q != "" && (!plainText(q) || len(q) > maxSearch) {
		return page.Page[User]{}, ErrValidation.WithFields(map[string]string{"q": "must be plain text of at most 200 bytes"})
	}
	return s.listUsers(ctx, strings.ToLower(q), req)
}

// sessions lists the families of userID that hold a live token (one each:
// a rotation marks the old token used as it issues the new one).
func (s *Store) sessions(ctx context.Context, userID string, now int64) ([]Session, error) {
	rows, err := s.db.R.QueryContext(ctx, fmt.Sprintf(`SELECT t.family_id,
(SELECT MIN(f.created_at) FROM refresh_tokens f WHERE f.family_id = t.family_id), t.created_at, t.expires_at
FROM refresh_tokens t WHERE t.user_id = $1 AND t.used_at IS NULL AND t.revoked_at IS NULL AND t.expires_at > $2
ORDER BY t.created_at DESC, t.id DESC LIMIT %d`, maxSessions), userID, now)
	if err != nil {
		return nil, fmt.Errorf("select sessions: %w", err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		var ss Session
		var started, last, expires int64
		if err := rows.Scan(&ss.ID, &started, &last, &expires); err != nil {
			return nil, fmt.Errorf("scan session: %w", err)
		}
		ss.StartedAt, ss.LastUsedAt, ss.ExpiresAt = fromMicros(started), fromMicros(last), fromMicros(expires)
		out = append(out, ss)
	}
	return out, rows.Err()
}

// revokeUserFamily revokes a family of userID's and returns how many live
// tokens it had (0: not the user's, or ended already).
func (s *Store) revokeUserFamily(ctx context.Context, q sqldb.Querier, userID, family string, now int64) (int64, error) {
	res, err := q.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = $1
WHERE user_id = $2 AND family_id = $3 AND revoked_at IS NULL AND used_at IS NULL AND expires_at > $1`, now, userID, family)
	if err != nil {
		return 0, fmt.Errorf("revoke session: %w", err)
	}
	n, err := res.RowsAffected()
	if err == nil && n > 0 {
		err = s.revokeFamily(ctx, q, family, now) // its used tokens too, for reuse detection
	}
	return n, err
}

// revokeOtherFamilies revokes every family of userID but keep, and returns
// how many of them were live.
func (s *Store) revokeOtherFamilies(ctx context.Context, q sqldb.Querier, userID, keep string, now int64) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(DISTINCT family_id) FROM refresh_tokens
WHERE user_id = $1 AND family_id <> $2 AND revoked_at IS NULL AND used_at IS NULL AND expires_at > $3`, userID, keep, now).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count other sessions: %w", err)
	}
	if _, err := q.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND family_id <> $3 AND revoked_at IS NULL`,
		now, userID, keep); err != nil {
		return 0, fmt.Errorf("revoke other sessions: %w", err)
	}
	return n, nil
}
