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
// routes: what the storage and usage services ask of it in split mode.
// Lookups are retried on network errors and 502/503/504 (rpc's policy); a
// users service that cannot be reached is errs.ErrUnavailable (503).
type Client struct {
	rpc *rpc.Client
}

// NewClient returns a client of the users service at baseURL,
// authenticating with keys. hc may be nil for the process's shared client
// (rpc.SharedHTTP).
func NewClient(baseURL string, keys *authn.ServiceKeys, hc *http.Client) *Client {
	return &Client{rpc: rpc.New("users", baseURL, keys, hc, ErrUserNotFound)}
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
