package users

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/outbox"
)

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
func hashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}
