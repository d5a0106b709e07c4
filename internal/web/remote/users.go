package remote

import (
	"context"
	"net/http"
	"net/url"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/users"
)

// Users is the users service for the pages (web.Users).
type Users struct {
	api      *api
	internal *users.Client
}

type userBody struct {
	User users.User `json:"user"`
}

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Username string `json:"username,omitempty"`
}

type refreshBody struct {
	RefreshToken string `json:"refresh_token"`
}

// Register creates an account (POST /api/v1/auth/register).
func (u *Users) Register(ctx context.Context, in users.RegisterInput) (users.User, error) {
	var out userBody
	err := u.api.anonymous(ctx, http.MethodPost, "/api/v1/auth/register", credentials{in.Email, in.Password, in.Username}, &out)
	return out.User, err
}

// CreateFirstAdmin creates the first admin, through the internal route.
func (u *Users) CreateFirstAdmin(ctx context.Context, in users.RegisterInput) (users.User, error) {
	return u.internal.CreateFirstAdmin(ctx, in)
}

// HasAdmin reports whether an admin exists, through the internal route.
func (u *Users) HasAdmin(ctx context.Context) (bool, error) { return u.internal.HasAdmin(ctx) }

// Names looks up usernames, through the internal route.
func (u *Users) Names(ctx context.Context, ids []string) (map[string]string, error) {
	return u.internal.Names(ctx, ids)
}

// Login checks a password (POST /api/v1/auth/login).
func (u *Users) Login(ctx context.Context, email, password string) (users.Tokens, error) {
	var t users.Tokens
	err := u.api.anonymous(ctx, http.MethodPost, "/api/v1/auth/login", credentials{Email: email, Password: password}, &t)
	return t, err
}

// Refresh rotates a refresh token (POST /api/v1/auth/refresh).
func (u *Users) Refresh(ctx context.Context, refresh string) (users.Tokens, error) {
	var t users.Tokens
	err := u.api.anonymous(ctx, http.MethodPost, "/api/v1/auth/refresh", refreshBody{refresh}, &t)
	return t, err
}

// Logout revokes the session's refresh token as the viewer.
func (u *Users) Logout(ctx context.Context, _ authn.Caller, refresh string) error {
	return u.api.call(ctx, http.MethodPost, "/api/v1/auth/logout", nil, refreshBody{refresh}, nil)
}

// Get returns the viewer's own account, or as an admin anyone's.
func (u *Users) Get(ctx context.Context, id string) (users.User, error) {
	path := "/api/v1/users/" + url.PathEscape(id)
	if self(ctx, id) {
		path = "/api/v1/users/me"
	}
	var out userBody
	err := u.api.call(ctx, http.MethodGet, path, nil, nil, &out)
	return out.User, err
}

// UpdateSelf changes the viewer's name or password.
func (u *Users) UpdateSelf(ctx context.Context, _ authn.Caller, in users.UpdateMe) (users.User, error) {
	body := struct {
		Username        *string `json:"username,omitempty"`
		Password        *string `json:"password,omitempty"`
		CurrentPassword *string `json:"current_password,omitempty"`
	}{in.Username, in.Password, in.CurrentPassword}
	var out userBody
	err := u.api.call(ctx, http.MethodPatch, "/api/v1/users/me", nil, body, &out)
	return out.User, err
}

// Search lists the accounts (an admin's).
func (u *Users) Search(ctx context.Context, q string, req page.Request) (page.Page[users.User], error) {
	query := pageQuery(req)
	if q != "" {
		query.Set("q", q)
	}
	var out page.Page[users.User]
	err := u.api.call(ctx, http.MethodGet, "/api/v1/users", query, nil, &out)
	return out, err
}

// Update changes an account (an admin's).
func (u *Users) Update(ctx context.Context, id string, in users.AdminUpdate) (users.User, error) {
	body := struct {
		Role                  *string `json:"role,omitempty"`
		Disabled              *bool   `json:"disabled,omitempty"`
		StorageQuotaBytes     *int64  `json:"storage_quota_bytes,omitempty"`
		DailyUploadLimitBytes *int64  `json:"daily_upload_limit_bytes,omitempty"`
		DailyEgressLimitBytes *int64  `json:"daily_egress_limit_bytes,omitempty"`
	}{in.Role, in.Disabled, in.Limits.StorageQuota, in.Limits.DailyUpload, in.Limits.DailyEgress}
	var out userBody
	err := u.api.call(ctx, http.MethodPatch, "/api/v1/users/"+url.PathEscape(id), nil, body, &out)
	return out.User, err
}

// Sessions lists the viewer's sessions; no one else's are listed.
func (u *Users) Sessions(ctx context.Context, userID string) ([]users.Session, error) {
	if !self(ctx, userID) {
		return nil, errs.ErrForbidden
	}
	var out users.Sessions
	err := u.api.call(ctx, http.MethodGet, "/api/v1/users/me/sessions", nil, nil, &out)
	return out.Items, err
}

// RevokeSession signs out one of the viewer's sessions.
func (u *Users) RevokeSession(ctx context.Context, userID, sessionID string) error {
	if !self(ctx, userID) {
		return errs.ErrForbidden
	}
	return u.api.call(ctx, http.MethodDelete, "/api/v1/users/me/sessions/"+url.PathEscape(sessionID), nil, nil, nil)
}

// RevokeOtherSessions signs out every session of the viewer but refresh's.
func (u *Users) RevokeOtherSessions(ctx context.Context, userID, refresh string) (int, error) {
	if !self(ctx, userID) {
		return 0, errs.ErrForbidden
	}
	var out users.Revoked
	err := u.api.call(ctx, http.MethodPost, "/api/v1/users/me/sessions/revoke-others", nil, refreshBody{refresh}, &out)
	return out.Revoked, err
}
