package users

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/outbox"
)

// Login checks a password and issues a token pair. Failures are throttled
// per account and per client address.
func (s *Service) Login(ctx context.Context, email, password string) (Tokens, error) {
	email = normalizeEmail(email)
	if !plainText(email) {
		// No account can have this address, and the throttle's records
		// could not store it: refused before any lookup.
		return Tokens{}, ErrInvalidCredentials
	}
	ip := obs.RequestFrom(ctx).IP
	attempt, err := s.throttle(ctx, email, ip)
	if err != nil {
		if errs.KindOf(err) == errs.RateLimited {
			s.events.RecordOrLog(ctx, s.event(ctx, "LOGIN", outbox.Denied, "login throttled after repeated failures").With("email", email))
		}
		return Tokens{}, err
	}
	u, err := s.store.userByEmail(ctx, email)
	if err != nil && !errors.Is(err, ErrUserNotFound) {
		return Tokens{}, fmt.Errorf("login: %w", err)
	}
	// An unknown email is checked against a dummy hash so that both answers
	// take the same time and do not reveal which emails have accounts.
	ok, err := s.hasher.Verify(ctx, password, u.PasswordHash)
	if err != nil {
		return Tokens{}, fmt.Errorf("login: %w", err)
	}
	if !ok || u.ID == "" {
		// The attempt's records stay: they are the failure.
		// The attempted email goes only into metadata, never the password.
		s.events.RecordOrLog(ctx, s.event(ctx, "LOGIN", outbox.Failure, "login failed: wrong email or password").With("email", email))
		return Tokens{}, ErrInvalidCredentials
	}
	// The right password: this attempt was no failure, and the account's
	// earlier failures from this address are forgiven (with the tokens'
	// transaction below, or on their own for a disabled account).
	pair := pairSubject(email, ip)
	if u.Disabled {
		if err := s.store.forgetAttempt(ctx, s.db.W, attempt, pair); err != nil {
			s.log.Warn("clear login failures", "err", err)
		}
		s.events.RecordOrLog(ctx, s.event(ctx, "LOGIN", outbox.Denied, "login refused: account disabled").ForUser(u.ID).On(u.ID))
		return Tokens{}, ErrAccountDisabled
	}
	var t Tokens
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.store.forgetAttempt(ctx, tx, attempt, pair); err != nil {
			return err
		}
		if t, err = s.issue(ctx, tx, u.User, uuid.NewString()); err != nil {
			return err
		}
		return s.events.Add(ctx, tx, s.event(ctx, "LOGIN", outbox.Success, "logged in").ForUser(u.ID).On(u.ID))
	})
	if err != nil {
		return Tokens{}, fmt.Errorf("login: %w", err)
	}
	return t, nil
}

// Login throttling counts an attempt before its password is checked, in
// one transaction with the check, so a burst of concurrent guesses cannot
// all pass a count taken before any of them failed. An attempt that turns
// out right is taken back. Three limits apply (docs/operations.md):
//   - per account and address (LoginMaxPerAccount): guessing one account
//     from one place; the owner elsewhere is not locked out by it;
//   - per address (LoginMaxPerIP): one place guessing many accounts;
//   - per account from anywhere (LoginMaxPerAccountAnywhere), slower: a
//     distributed guess at one account.

func pairSubject(email, ip string) string { return "pair:" + email + "|" + ip }

// throttle records a login attempt, or refuses it with ErrTooManyAttempts
// when a limit is reached. It returns the attempt's record ids.
func (s *Service) throttle(ctx context.Context, email, ip string) ([]string, error) {
	now := s.now()
	limits := []attemptLimit{
		{subject: pairSubject(email, ip), max: s.cfg.LoginMaxPerAccount},
		{subject: "email:" + email, max: s.cfg.LoginMaxPerAccountAnywhere},
	}
	if ip != "" {
		limits = append(limits, attemptLimit{subject: "ip:" + ip, max: s.cfg.LoginMaxPerIP})
	}
	ids, oldest, err := s.store.addAttempt(ctx, limits, micros(now), micros(now.Add(-s.cfg.LoginWindow)))
	if errors.Is(err, errThrottled) {
		wait := max(fromMicros(oldest).Add(s.cfg.LoginWindow).Sub(now), time.Second)
		return nil, ErrTooManyAttempts.WithRetryAfter(wait)
	}
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	return ids, nil
}

// throttleAddress records an attempt that counts against a client
// address's limit only.
func (s *Service) throttleAddress(ctx context.Context, ip string) ([]string, error) {
	now := s.now()
	ids, oldest, err := s.store.addAttempt(ctx, []attemptLimit{{subject: "ip:" + ip, max: s.cfg.LoginMaxPerIP}},
		micros(now), micros(now.Add(-s.cfg.LoginWindow)))
	if errors.Is(err, errThrottled) {
		return nil, ErrTooManyAttempts.WithRetryAfter(max(fromMicros(oldest).Add(s.cfg.LoginWindow).Sub(now), time.Second))
	}
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	return ids, nil
}
