package storage

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/reserve"
	"github.com/reel-video/reel/internal/platform/rpc"
)

// Client is the storage service in another process, over its internal
// routes. It implements Quota for the videos and users services in split
// mode.
//
// Calls that are safe to repeat are retried a few times on network errors
// and 502/503/504 (rpc's policy): Commit, Release and Free are idempotent by
// design, and Reserve is made so by sending a reservation id chosen here;
// Charge is not idempotent and is tried once. A service that cannot be
// reached is errs.ErrUnavailable (503); refusals come back as this
// package's sentinel errors, recognised by their problem code.
type Client struct {
	rpc *rpc.Client
}

var _ Quota = (*Client)(nil)

// NewClient returns a client of the storage service at baseURL (e.g.
// "http://storage:8080"), authenticating with keys. hc may be nil for the
// process's shared client (rpc.SharedHTTP): timeouts, and connection reuse
// suited to many concurrent uploads.
func NewClient(baseURL string, keys *authn.ServiceKeys, hc *http.Client) *Client {
	return &Client{rpc: rpc.New("storage", baseURL, keys, hc,
		ErrQuotaExceeded, ErrReservationNotFound, ErrReservationSettled, ErrInvalid, ErrInvalidUserID)}
}

// Reserve implements Quota.
func (c *Client) Reserve(ctx context.Context, userID string, n int64, ttl time.Duration) (Reservation, error) {
	in := reserveRequest{ID: reserve.NewID(), UserID: userID, Bytes: n, TTLMS: reserve.Millis(ttl)}
	var out Reservation
	if err := c.rpc.Call(ctx, "reserve", http.MethodPost, "/internal/v1/storage/reservations", in, &out, true); err != nil {
		return reserve.Unanswered(in.ID, err), err
	}
	return out, nil
}

// Commit implements Quota.
func (c *Client) Commit(ctx context.Context, reservationID string, actualBytes int64, object string) error {
	return c.rpc.Call(ctx, "commit", http.MethodPost, "/internal/v1/storage/reservations/"+url.PathEscape(reservationID)+"/commit",
		commitRequest{ActualBytes: actualBytes, Object: object}, nil, true)
}

// Renew implements Quota.
func (c *Client) Renew(ctx context.Context, reservationID string, ttl time.Duration) error {
	return c.rpc.Call(ctx, "renew", http.MethodPost, "/internal/v1/storage/reservations/"+url.PathEscape(reservationID)+"/renew",
		reserve.RenewRequest{TTLMS: reserve.Millis(ttl)}, nil, true)
}

// Release implements Quota.
func (c *Client) Release(ctx context.Context, reservationID string) error {
	return c.rpc.Call(ctx, "release", http.MethodPost, "/internal/v1/storage/reservations/"+url.PathEscape(reservationID)+"/release", nil, nil, true)
}

// Free implements Quota.
func (c *Client) Free(ctx context.Context, userID, object string) (int64, error) {
	var out freeResponse
	err := c.rpc.Call(ctx, "free", http.MethodPost, "/internal/v1/storage/users/"+url.PathEscape(userID)+"/free", objectRequest{Object: object}, &out, true)
	return out.FreedBytes, err
}

// Charge implements Quota. It is not retried: a retry after a lost answer
// would charge twice.
func (c *Client) Charge(ctx context.Context, userID, object string, n int64) error {
	return c.rpc.Call(ctx, "charge", http.MethodPost, "/internal/v1/storage/users/"+url.PathEscape(userID)+"/charge", objectRequest{Object: object, Bytes: n}, nil, false)
}

// Usage implements Quota.
func (c *Client) Usage(ctx context.Context, userID string) (Usage, error) {
	var out Usage
	err := c.rpc.Call(ctx, "usage", http.MethodGet, "/internal/v1/storage/users/"+url.PathEscape(userID), nil, &out, true)
	return out, err
}

// SetQuota implements Quota.
func (c *Client) SetQuota(ctx context.Context, userID string, quota int64) error {
	return c.rpc.Call(ctx, "set quota", http.MethodPut, "/internal/v1/storage/users/"+url.PathEscape(userID)+"/quota", quotaRequest{QuotaBytes: &quota}, nil, true)
}

// Accounts implements Quota.
func (c *Client) Accounts(ctx context.Context, after string, limit int) ([]reserve.Account, error) {
	var out []reserve.Account
	q := url.Values{"after": {after}, "limit": {strconv.Itoa(limit)}}
	err := c.rpc.Call(ctx, "accounts", http.MethodGet, "/internal/v1/storage/accounts?"+q.Encode(), nil, &out, true)
	return out, err
}

// Objects implements Quota.
func (c *Client) Objects(ctx context.Context, userID, after string, limit int) ([]reserve.Object, error) {
	var out []reserve.Object
	q := url.Values{"after": {after}, "limit": {strconv.Itoa(limit)}}
	err := c.rpc.Call(ctx, "objects", http.MethodGet, "/internal/v1/storage/users/"+url.PathEscape(userID)+"/objects?"+q.Encode(), nil, &out, true)
	return out, err
}

// Correct implements Quota. A retry is safe: each correction applies only
// to the bytes it was made from.
func (c *Client) Correct(ctx context.Context, userID string, fixes []reserve.Correction) (int, error) {
	var out correctResponse
	err := c.rpc.Call(ctx, "correct", http.MethodPost, "/internal/v1/storage/users/"+url.PathEscape(userID)+"/corrections",
		correctRequest{Corrections: fixes}, &out, true)
	return out.Applied, err
}

// Lapsed implements Quota.
func (c *Client) Lapsed(ctx context.Context, grace time.Duration) (reserve.Lapsed, error) {
	var out reserve.Lapsed
	err := c.rpc.Call(ctx, "lapsed", http.MethodGet, "/internal/v1/storage/reservations/lapsed?grace_ms="+strconv.FormatInt(grace.Milliseconds(), 10), nil, &out, true)
	return out, err
}

// Sweep implements Quota.
func (c *Client) Sweep(ctx context.Context) error {
	return c.rpc.Call(ctx, "sweep", http.MethodPost, "/internal/v1/storage/sweep", nil, nil, true)
}
