package users

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/text"
)

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
		// A new account was no probe: its attempt is taken back with it.
		if err := s.store.forgetAttempt(ctx, tx, attempt); err != nil {
			return err
		}
		e := s.event(ctx, "REGISTER", outbox.Success, "registered account "+u.Email).ForUser(u.ID).On(u.ID).With("role", u.Role)
		return s.events.Add(ctx, tx, e)
	})
	if err != nil {
		return User{}, fmt.Errorf("register: %w", err)
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
