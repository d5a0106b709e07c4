package users

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Standing tells every service's verifier what a token's holder may do now,
// whatever the token says: whether the account is disabled, its current
// role (a demoted admin's token acts as a user's at once) and the time
// before which its tokens are revoked. Unknown accounts are disabled.
func (s *Service) Standing(ctx context.Context, userID string) (authn.Standing, error) {
	st, err := s.store.standing(ctx, userID)
	if errors.Is(err, ErrUserNotFound) {
		return authn.Standing{Disabled: true}, nil
	}
	if err != nil {
		return authn.Standing{}, fmt.Errorf("standing: %w", err)
	}
	return st, nil
}

func (s *Store) standing(ctx context.Context, id string) (authn.Standing, error) {
	var (
		st    authn.Standing
		after int64
	)
	err := s.db.R.QueryRowContext(ctx, `SELECT role, disabled, tokens_valid_after FROM users WHERE id = $1`, id).
		Scan(&st.Role, &st.Disabled, &after)
	if errors.Is(err, sql.ErrNoRows) {
		return authn.Standing{}, ErrUserNotFound
	}
	if err != nil {
		return authn.Standing{}, fmt.Errorf("select standing: %w", err)
	}
	if after > 0 {
		st.ValidAfter = fromMicros(after)
	}
	return st, nil
}

// cutTokens revokes every access token of the user issued until now.
func (s *Store) cutTokens(ctx context.Context, q sqldb.Querier, userID string, now int64) error {
	if _, err := q.ExecContext(ctx, `UPDATE users SET tokens_valid_after = $1 WHERE id = $2`, now, userID); err != nil {
		return fmt.Errorf("revoke access tokens: %w", err)
	}
	return s.moveVersion(ctx, q)
}

// moveVersion moves the accounts version, in the transaction q of a change
// to an account (every UPDATE of users), so that every process's caches of
// account data drop what they hold (authn.Watch).
func (s *Store) moveVersion(ctx context.Context, q sqldb.Querier) error {
	if _, err := q.ExecContext(ctx, `UPDATE users_version SET version = version + 1 WHERE id = 1`); err != nil {
		return fmt.Errorf("move the accounts version: %w", err)
	}
	return nil
}

// AccountsVersion is the accounts version (authn.VersionSource).
func (s *Service) AccountsVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.db.R.QueryRowContext(ctx, `SELECT version FROM users_version WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read the accounts version: %w", err)
	}
	return v, nil
}
