// Package users is the users service: accounts and roles, password login,
// access tokens signed with Ed25519 keys published as a JWKS, and rotating
// refresh tokens.
package users

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Errors of the users service.
var (
	ErrEmailTaken          = errs.New(errs.Conflict, "email_taken", "an account with this email already exists")
	ErrInvalidCredentials  = errs.New(errs.Unauthenticated, "invalid_credentials", "the email or password is wrong")
	ErrInvalidRefresh      = errs.New(errs.Unauthenticated, "invalid_refresh_token", "the refresh token is invalid, expired or revoked")
	ErrAccountDisabled     = errs.New(errs.Forbidden, "account_disabled", "this account is disabled")
	ErrUserNotFound        = errs.New(errs.NotFound, "user_not_found", "no such user")
	ErrTooManyAttempts     = errs.New(errs.RateLimited, "too_many_attempts", "too many failed logins, try again later")
	ErrValidation          = errs.New(errs.Validation, "validation_failed", "some fields are not valid")
	ErrWrongPassword       = errs.New(errs.Forbidden, "wrong_password", "the current password is wrong")
	ErrLastAdmin           = errs.New(errs.Conflict, "last_admin", "the last enabled admin cannot be demoted or disabled")
	ErrLimitsNotConfigured = errs.New(errs.Unavailable, "limits_unavailable", "quota and limit overrides are not available in this process")
)

// User is an account as clients see it.
type User struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Username  string    `json:"username"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	Disabled  bool      `json:"disabled"`
	UpdatedAt time.Time `json:"-"`
}

// Tokens is what login and refresh return.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	User         User   `json:"user"`
}

// Limits are per-user overrides that other services enforce; a nil field
// leaves the current value.
type Limits struct {
	StorageQuota, DailyUpload, DailyEgress *int64
}

// LimitSetter applies per-user overrides in the storage and usage services.
// Defined here, by its consumer; the app wires the in-process services or
// their HTTP clients.
type LimitSetter interface {
	SetLimits(ctx context.Context, userID string, l Limits) error
}

// Config configures the service.
type Config struct {
	AccessTTL, RefreshTTL             time.Duration
	LoginMaxPerAccount, LoginMaxPerIP int
	// LoginMaxPerAccountAnywhere bounds failures on one account from all
	// addresses together; zero means ten times LoginMaxPerAccount.
	LoginMaxPerAccountAnywhere int
	LoginWindow                time.Duration
}

// Service implements the users service's logic.
type Service struct {
	store           *Store
	db              *sqldb.DB
	hasher          *Hasher
	keys            *keyring
	cfg             Config
	limits          LimitSetter
	events          *outbox.Outbox
	log             *slog.Logger
	now             func() time.Time
	standingChanged func(userID string)
}

// New builds the service and loads (or on first start creates) its signing
// key.
func New(ctx context.Context, db *sqldb.DB, events *outbox.Outbox, hasher *Hasher, cfg Config, log *slog.Logger) (*Service, error) {
	if cfg.LoginMaxPerAccountAnywhere == 0 {
		cfg.LoginMaxPerAccountAnywhere = 10 * cfg.LoginMaxPerAccount
	}
	s := &Service{store: NewStore(db), db: db, events: events, hasher: hasher, cfg: cfg, log: log, now: time.Now}
	s.keys = &keyring{store: s.store}
	if err := s.keys.load(ctx, s.now()); err != nil {
		return nil, fmt.Errorf("users: load signing keys: %w", err)
	}
	return s, nil
}

// serviceName is the service field of this service's activity events.
const serviceName = "users"

func (s *Service) event(ctx context.Context, action, outcome, desc string) outbox.Event {
	return outbox.NewEvent(ctx, serviceName, action, outcome, desc)
}

// SetStandingChanged wires what to tell when an account's standing changes
// (this process's verifier forgets its cached standing at once).
func (s *Service) SetStandingChanged(f func(userID string)) { s.standingChanged = f }

// SetLimitSetter wires the service that applies quota and limit overrides.
func (s *Service) SetLimitSetter(l LimitSetter) { s.limits = l }

// SetClock replaces the clock, for tests.
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// PublicKey implements authn.KeySource for verifiers in this process.
func (s *Service) PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	return s.keys.PublicKey(ctx, kid)
}

// JWKS returns the public keys.
func (s *Service) JWKS() authn.JWKS { return s.keys.jwks() }

// RotateKey makes a new signing key; older keys keep verifying.
func (s *Service) RotateKey(ctx context.Context) error {
	return s.keys.rotate(ctx, s.now())
}

// ReloadKeys rereads the keys, so that a rotation done by another replica
// (or by `reel keys rotate`) takes effect here without a restart.
func (s *Service) ReloadKeys(ctx context.Context) error {
	return s.keys.load(ctx, s.now())
}

// Sweep deletes expired refresh tokens and old login failures.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.now()
	if _, err := s.store.deleteExpiredRefresh(ctx, micros(now)); err != nil {
		return err
	}
	// A retired key verifies tokens it signed until they have all expired;
	// the extra hour covers replicas that have not reloaded yet.
	if err := s.store.deleteRetiredKeys(ctx, micros(now.Add(-s.cfg.AccessTTL-time.Hour))); err != nil {
		return err
	}
	return s.store.deleteOldFailures(ctx, micros(now.Add(-s.cfg.LoginWindow)))
}

func micros(t time.Time) int64     { return t.UnixMicro() }
func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }
