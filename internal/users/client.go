package users

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/rpc"
)

// Client is the users service in another process, over its internal
// routes: what the storage and usage services ask of it in split mode, and
// what the gateway's web app needs that no public route offers.
// Lookups are retried on network errors and 502/503/504 (rpc's policy); a
// users service that cannot be reached is errs.ErrUnavailable (503).
type Client struct {
	rpc *rpc.Client
}

// NewClient returns a client of the users service at baseURL,
// authenticating with keys. hc may be nil for the process's shared client
// (rpc.SharedHTTP).
func NewClient(baseURL string, keys *authn.ServiceKeys, hc *http.Client) *Client {
	return &Client{rpc: rpc.New("users", baseURL, keys, hc,
		ErrUserNotFound, ErrAdminExists, ErrValidation, ErrEmailTaken, ErrTooManyNames)}
}

// UserExists reports whether an account exists, enabled or not.
func (c *Client) UserExists(ctx context.Context, id string) (bool, error) {
	err := c.rpc.Call(ctx, "user", http.MethodGet, "/internal/v1/users/"+url.PathEscape(id), nil, nil, true)
	if errors.Is(err, ErrUserNotFound) {
		return false, nil
	}
	return err == nil, err
}

// standingBody is the internal user route's answer.
type standingBody struct {
	ID               string `json:"id"`
	Role             string `json:"role"`
	Disabled         bool   `json:"disabled"`
	TokensValidAfter int64  `json:"tokens_valid_after"` // Unix microseconds, 0 for none
}

// Standing is the account's standing, for another service's verifier. An
// unknown account is disabled.
func (c *Client) Standing(ctx context.Context, id string) (authn.Standing, error) {
	var b standingBody
	err := c.rpc.Call(ctx, "user", http.MethodGet, "/internal/v1/users/"+url.PathEscape(id), nil, &b, true)
	if errors.Is(err, ErrUserNotFound) {
		return authn.Standing{Disabled: true}, nil
	}
	if err != nil {
		return authn.Standing{}, err
	}
	st := authn.Standing{Role: b.Role, Disabled: b.Disabled}
	if b.TokensValidAfter > 0 {
		st.ValidAfter = fromMicros(b.TokensValidAfter)
	}
	return st, nil
}

// AccountsVersion is the accounts version (authn.VersionSource), for the
// Watch of another process's verifier.
func (c *Client) AccountsVersion(ctx context.Context) (int64, error) {
	var b versionBody
	err := c.rpc.Call(ctx, "accounts version", http.MethodGet, "/internal/v1/users/version", nil, &b, true)
	return b.Version, err
}

// Names returns the usernames of the accounts among ids (at most
// MaxNames), by id.
func (c *Client) Names(ctx context.Context, ids []string) (map[string]string, error) {
	if len(ids) > MaxNames {
		return nil, ErrTooManyNames
	}
	q := url.Values{"id": ids}
	var out Names
	if err := c.rpc.Call(ctx, "names", http.MethodGet, "/internal/v1/users?"+q.Encode(), nil, &out, true); err != nil {
		return nil, err
	}
	if out.Names == nil {
		out.Names = map[string]string{}
	}
	return out.Names, nil
}

// HasAdmin reports whether any admin account exists.
func (c *Client) HasAdmin(ctx context.Context) (bool, error) {
	var out adminState
	err := c.rpc.Call(ctx, "has admin", http.MethodGet, "/internal/v1/admin", nil, &out, true)
	return out.Exists, err
}

// CreateFirstAdmin creates an admin account while none exists
// (ErrAdminExists otherwise). It is not retried: an account may have been
// made by an attempt whose answer was lost.
func (c *Client) CreateFirstAdmin(ctx context.Context, in RegisterInput) (User, error) {
	var out userBody
	err := c.rpc.Call(ctx, "create first admin", http.MethodPost, "/internal/v1/admin",
		registerBody{Email: in.Email, Password: in.Password, Username: in.Username}, &out, false)
	return out.User, err
}
