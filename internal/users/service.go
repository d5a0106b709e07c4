// Package users is the users service: accounts and roles, password login,
// access tokens signed with Ed25519 keys published as a JWKS, and rotating
// refresh tokens.
package users

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/text"
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

// RegisterInput is a new account.
type RegisterInput struct {
	Email, Password, Username string
	Admin                     bool
}

// Register creates an account.
func (s *Service) Register(ctx context.Context, in RegisterInput) (User, error) {
	email, fields := normalizeEmail(in.Email), map[string]string{}
	if !validEmail(email) {
		fields["email"] = "must be a valid email address"
	}
	if msg := checkPassword(in.Password); msg != "" {
		fields["password"] = msg
	}
	username := strings.TrimSpace(in.Username)
	if msg := checkUsername(username); msg != "" {
		fields["username"] = msg
	}
	if len(fields) > 0 {
		return User{}, ErrValidation.WithFields(fields)
	}
	// "Email taken" tells whether an account exists, so a client address
	// gets no more of those answers than of failed logins: the attempt
	// counts against the address's login limit unless it succeeds.
	// Callers without an address (the command line, first-run setup) are
	// not throttled.
	var attempt []string
	if ip := obs.RequestFrom(ctx).IP; ip != "" {
		var err error
		if attempt, err = s.throttleAddress(ctx, ip); err != nil {
			return User{}, err
		}
	}
	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return User{}, fmt.Errorf("register: %w", err)
	}
	now := s.now().UTC()
	u := userRow{User: User{ID: uuid.Must(uuid.NewV7()).String(), Email: email, Username: username, Role: authn.RoleUser, CreatedAt: now, UpdatedAt: now}, PasswordHash: hash}
	if in.Admin {
		u.Role = authn.RoleAdmin
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.store.insertUser(ctx, tx, u); err != nil {
			return err
		}
		e := s.event(ctx, "REGISTER", outbox.Success, "registered account "+u.Email).ForUser(u.ID).On(u.ID).With("role", u.Role)
		return s.events.Add(ctx, tx, e)
	})
	if err != nil {
		return User{}, fmt.Errorf("register: %w", err)
	}
	if attempt != nil {
		if err := s.store.forgetAttempt(ctx, attempt); err != nil {
			s.log.Warn("clear registration attempt", "err", err)
		}
	}
	return u.User, nil
}

// Bootstrap creates the first admin from configuration when no admin exists.
func (s *Service) Bootstrap(ctx context.Context, email, password string) error {
	n, err := s.store.countAdmins(ctx)
	if err != nil || n > 0 {
		return err
	}
	_, err = s.Register(ctx, RegisterInput{Email: email, Password: password, Username: "admin", Admin: true})
	if errors.Is(err, ErrEmailTaken) {
		return fmt.Errorf("bootstrap admin: %s is already registered as a user; promote it with PATCH /api/v1/users/{id}", normalizeEmail(email))
	}
	if err != nil {
		return fmt.Errorf("bootstrap admin: %w", err)
	}
	s.log.Info("created bootstrap admin", "email", normalizeEmail(email))
	return nil
}

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
	// earlier failures from this address are forgiven.
	if err := s.store.forgetAttempt(ctx, attempt, pairSubject(email, ip)); err != nil {
		s.log.Warn("clear login failures", "err", err)
	}
	if u.Disabled {
		s.events.RecordOrLog(ctx, s.event(ctx, "LOGIN", outbox.Denied, "login refused: account disabled").ForUser(u.ID).On(u.ID))
		return Tokens{}, ErrAccountDisabled
	}
	var t Tokens
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
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

// issue makes an access token and a refresh token in family.
func (s *Service) issue(ctx context.Context, tx *sql.Tx, u User, family string) (Tokens, error) {
	now := s.now()
	claims := authn.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   u.ID,
			Issuer:    authn.Issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.AccessTTL)),
			ID:        uuid.NewString(),
		},
		Role: u.Role, ID: u.ID, Email: u.Email, SessionID: family,
	}
	access, err := s.keys.sign(claims)
	if err != nil {
		return Tokens{}, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Tokens{}, fmt.Errorf("refresh token: %w", err)
	}
	refresh := base64.RawURLEncoding.EncodeToString(raw)
	err = s.store.insertRefresh(ctx, tx, uuid.NewString(), hashToken(refresh), family, u.ID, micros(now), micros(now.Add(s.cfg.RefreshTTL)))
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(s.cfg.AccessTTL.Seconds()), RefreshToken: refresh, User: u}, nil
}

// Refresh rotates a refresh token. Presenting a token that was already
// rotated means it leaked: the whole family is revoked.
func (s *Service) Refresh(ctx context.Context, refresh string) (Tokens, error) {
	if refresh == "" || len(refresh) > 256 {
		return Tokens{}, ErrInvalidRefresh
	}
	var t Tokens
	var reused bool
	now := s.now()
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		reused = false
		r, err := s.store.refreshByHash(ctx, tx, hashToken(refresh))
		if err != nil {
			return err
		}
		if r.UsedAt.Valid || r.RevokedAt.Valid {
			reused = r.UsedAt.Valid
			if err := s.store.revokeFamily(ctx, tx, r.FamilyID, micros(now)); err != nil {
				return err
			}
			if !reused {
				return nil
			}
			e := s.event(ctx, "TOKEN_REFRESH", outbox.Denied, "reuse of a rotated refresh token: session revoked").ForUser(r.UserID).On(r.UserID)
			return s.events.Add(ctx, tx, e)
		}
		if r.ExpiresAt <= micros(now) {
			return ErrInvalidRefresh
		}
		u, err := s.store.userByID(ctx, tx, r.UserID)
		if err != nil {
			return err
		}
		if u.Disabled {
			return ErrAccountDisabled
		}
		ok, err := s.store.markUsed(ctx, tx, r.ID, micros(now))
		if err != nil {
			return err
		}
		if !ok {
			reused = true
			return s.store.revokeFamily(ctx, tx, r.FamilyID, micros(now))
		}
		if t, err = s.issue(ctx, tx, u.User, r.FamilyID); err != nil {
			return err
		}
		return s.events.Add(ctx, tx, s.event(ctx, "TOKEN_REFRESH", outbox.Success, "refreshed access token").ForUser(u.ID).On(u.ID))
	})
	if err != nil {
		if errors.Is(err, ErrUserNotFound) {
			return Tokens{}, ErrInvalidRefresh
		}
		return Tokens{}, fmt.Errorf("refresh: %w", err)
	}
	if t.AccessToken == "" { // family revoked above, committed
		if reused {
			s.log.Warn("refresh token reuse detected; family revoked", "request_id", obs.RequestFrom(ctx).ID)
		}
		return Tokens{}, ErrInvalidRefresh
	}
	return t, nil
}

// Logout revokes the caller's refresh token (its family, so no rotated
// descendant survives). Tokens of other users are left alone silently.
func (s *Service) Logout(ctx context.Context, caller authn.Caller, refresh string) error {
	if refresh == "" || len(refresh) > 256 {
		return ErrInvalidRefresh
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		r, err := s.store.refreshByHash(ctx, tx, hashToken(refresh))
		if errors.Is(err, ErrInvalidRefresh) {
			return nil
		}
		if err != nil {
			return err
		}
		if r.UserID != caller.UserID {
			return nil
		}
		if err := s.store.revokeFamily(ctx, tx, r.FamilyID, micros(s.now())); err != nil {
			return err
		}
		return s.events.Add(ctx, tx, s.event(ctx, "LOGOUT", outbox.Success, "logged out").On(caller.UserID))
	})
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	return nil
}

// Get returns a user.
func (s *Service) Get(ctx context.Context, id string) (User, error) {
	if _, err := uuid.Parse(id); err != nil {
		return User{}, ErrUserNotFound
	}
	u, err := s.store.userByID(ctx, s.db.R, id)
	if err != nil {
		return User{}, fmt.Errorf("get user: %w", err)
	}
	return u.User, nil
}

// UserExists reports whether an account exists, enabled or not: for the
// services that answer about users they do not own (storage, usage).
func (s *Service) UserExists(ctx context.Context, id string) (bool, error) {
	_, err := s.Get(ctx, id)
	if errors.Is(err, ErrUserNotFound) {
		return false, nil
	}
	return err == nil, err
}

// UpdateMe is a change to one's own account.
type UpdateMe struct {
	Username        *string
	Password        *string
	CurrentPassword *string
}

// UpdateSelf changes the caller's username or password. Changing the
// password needs the current one and signs out every other session.
func (s *Service) UpdateSelf(ctx context.Context, caller authn.Caller, in UpdateMe) (User, error) {
	fields := map[string]string{}
	if in.Username != nil {
		v := strings.TrimSpace(*in.Username)
		in.Username = &v
		if msg := checkUsername(v); msg != "" {
			fields["username"] = msg
		}
	}
	if in.Password != nil {
		if msg := checkPassword(*in.Password); msg != "" {
			fields["password"] = msg
		}
		if in.CurrentPassword == nil {
			fields["current_password"] = "is required to change the password"
		}
	}
	if len(fields) > 0 {
		return User{}, ErrValidation.WithFields(fields)
	}
	u, err := s.store.userByID(ctx, s.db.R, caller.UserID)
	if err != nil {
		return User{}, fmt.Errorf("update self: %w", err)
	}
	var newHash string
	if in.Password != nil {
		ok, err := s.hasher.Verify(ctx, *in.CurrentPassword, u.PasswordHash)
		if err != nil {
			return User{}, fmt.Errorf("update self: %w", err)
		}
		if !ok {
			return User{}, ErrWrongPassword
		}
		if newHash, err = s.hasher.Hash(ctx, *in.Password); err != nil {
			return User{}, fmt.Errorf("update self: %w", err)
		}
	}
	var out User
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		u, err := s.store.userByID(ctx, tx, caller.UserID)
		if err != nil {
			return err
		}
		if in.Username != nil {
			u.Username = *in.Username
		}
		if newHash != "" {
			u.PasswordHash = newHash
			if err := s.store.revokeUserTokens(ctx, tx, u.ID, micros(s.now())); err != nil {
				return err
			}
		}
		u.UpdatedAt = s.now().UTC()
		out = u.User
		if err := s.store.updateUser(ctx, tx, u); err != nil {
			return err
		}
		e := s.event(ctx, "UPDATE_USER", outbox.Success, "updated own account").On(u.ID).
			With("username_changed", in.Username != nil).With("password_changed", newHash != "")
		return s.events.Add(ctx, tx, e)
	})
	if err != nil {
		return User{}, fmt.Errorf("update self: %w", err)
	}
	return out, nil
}

// List pages through all users, newest first.
func (s *Service) List(ctx context.Context, req page.Request) (page.Page[User], error) {
	items, err := s.store.listUsers(ctx, req)
	if err != nil {
		return page.Page[User]{}, err
	}
	return page.Make(items, req.Limit, func(u User) page.Cursor {
		return page.Cursor{T: micros(u.CreatedAt), ID: u.ID}
	}), nil
}

// AdminUpdate is an admin's change to an account.
type AdminUpdate struct {
	Role     *string
	Disabled *bool
	Limits   Limits
}

// MaxLimitBytes is the largest quota or daily limit an admin may set: the
// largest byte count the storage and usage services accept (1 PiB).
const MaxLimitBytes = int64(1) << 50

// Update applies an admin's change. Disabling an account revokes its
// refresh tokens; the last enabled admin cannot lock everyone out.
func (s *Service) Update(ctx context.Context, id string, in AdminUpdate) (User, error) {
	if _, err := uuid.Parse(id); err != nil {
		return User{}, ErrUserNotFound
	}
	fields := map[string]string{}
	if in.Role != nil && *in.Role != authn.RoleUser && *in.Role != authn.RoleAdmin {
		fields["role"] = "must be user or admin"
	}
	for name, v := range map[string]*int64{"storage_quota_bytes": in.Limits.StorageQuota, "daily_upload_limit_bytes": in.Limits.DailyUpload, "daily_egress_limit_bytes": in.Limits.DailyEgress} {
		// Checked here, against the bound storage and usage apply, so that
		// a value they would refuse fails the whole update before any part
		// of it is applied.
		if v != nil && (*v < -1 || *v > MaxLimitBytes) {
			fields[name] = "must be a byte count up to 1 PiB, or -1 for unlimited"
		}
	}
	if len(fields) > 0 {
		return User{}, ErrValidation.WithFields(fields)
	}
	hasLimits := in.Limits.StorageQuota != nil || in.Limits.DailyUpload != nil || in.Limits.DailyEgress != nil
	if hasLimits && s.limits == nil {
		return User{}, ErrLimitsNotConfigured
	}
	if hasLimits {
		// The overrides live in other services, out of this transaction's
		// reach. They go first, after a read-only run of the checks the
		// transaction makes, so that an unknown account or a refused change
		// applies nothing, and a failure of storage or usage leaves the
		// account as it was (the request can simply be repeated). Only a
		// change that races this one between the two can still fail the
		// transaction after the overrides are set.
		if _, err := s.applyUpdate(ctx, s.db.R, id, in); err != nil {
			return User{}, fmt.Errorf("update user: %w", err)
		}
		if err := s.limits.SetLimits(ctx, id, in.Limits); err != nil {
			return User{}, fmt.Errorf("update user limits: %w", err)
		}
	}
	var out User
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		u, err := s.applyUpdate(ctx, tx, id, in)
		if err != nil {
			return err
		}
		if u.Disabled {
			if err := s.store.revokeUserTokens(ctx, tx, u.ID, micros(s.now())); err != nil {
				return err
			}
			if err := s.store.cutTokens(ctx, tx, u.ID, micros(s.now())); err != nil {
				return err
			}
		}
		u.UpdatedAt = s.now().UTC()
		out = u.User
		if err := s.store.updateUser(ctx, tx, u); err != nil {
			return err
		}
		e := s.event(ctx, "UPDATE_USER", outbox.Success, "admin updated account "+u.Email).On(u.ID).
			With("role", u.Role).With("disabled", u.Disabled)
		for k, v := range map[string]*int64{"storage_quota_bytes": in.Limits.StorageQuota, "daily_upload_limit_bytes": in.Limits.DailyUpload, "daily_egress_limit_bytes": in.Limits.DailyEgress} {
			if v != nil {
				e = e.With(k, *v)
			}
		}
		return s.events.Add(ctx, tx, e)
	})
	if err != nil {
		return User{}, fmt.Errorf("update user: %w", err)
	}
	if s.standingChanged != nil {
		s.standingChanged(out.ID)
	}
	return out, nil
}

// applyUpdate reads the account and applies in's role and disabled flag
// to it in memory, refusing a change that would leave no enabled admin.
func (s *Service) applyUpdate(ctx context.Context, q sqldb.Querier, id string, in AdminUpdate) (userRow, error) {
	u, err := s.store.userByID(ctx, q, id)
	if err != nil {
		return userRow{}, err
	}
	wasActiveAdmin := u.Role == authn.RoleAdmin && !u.Disabled
	if in.Role != nil {
		u.Role = *in.Role
	}
	if in.Disabled != nil {
		u.Disabled = *in.Disabled
	}
	if wasActiveAdmin && (u.Role != authn.RoleAdmin || u.Disabled) {
		var n int
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = FALSE AND id <> $1`, id).Scan(&n); err != nil {
			return userRow{}, fmt.Errorf("count admins: %w", err)
		}
		if n == 0 {
			return userRow{}, ErrLastAdmin
		}
	}
	return u, nil
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

func hashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

func normalizeEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

func validEmail(e string) bool {
	if len(e) > 254 || strings.ContainsAny(e, " <>\"") {
		return false
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e {
		return false
	}
	_, domain, _ := strings.Cut(e, "@")
	return strings.Contains(domain, ".") && !strings.HasSuffix(domain, ".")
}

func checkPassword(p string) string {
	switch n := utf8.RuneCountInString(p); {
	case n < 8:
		return "must have at least 8 characters"
	case len(p) > 1024:
		return "must have at most 1024 bytes"
	}
	return ""
}

func checkUsername(u string) string {
	if !plainText(u) {
		return "must be valid UTF-8 without control characters"
	}
	if text.HasDeceptive(u) {
		return "must not contain invisible formatting characters (zero-width or direction marks)"
	}
	if n := utf8.RuneCountInString(u); n < 1 || n > 64 {
		return "must have 1 to 64 characters"
	}
	return ""
}

// plainText reports whether s is valid UTF-8 without control characters
// (NUL among them, which PostgreSQL refuses in text).
func plainText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

func micros(t time.Time) int64     { return t.UnixMicro() }
func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }
