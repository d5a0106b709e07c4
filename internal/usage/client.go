package usage

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

// Client is the usage service in another process, over its internal
// routes. It implements Meter for the videos and users services in split
// mode, and is the EgressSink of their EgressMeter.
//
// Every call is safe to repeat and is retried a few times on network
// errors and 502/503/504 (rpc's policy): commits and releases are idempotent
// by design, ReserveUpload is made so by sending a reservation id chosen
// here, and AddEgress by its batch id (one is made up when the caller gives
// none). A service that cannot be reached is errs.ErrUnavailable (503);
// refusals come back as this package's sentinel errors, recognised by their
// code, ErrDailyLimit with its Retry-After.
type Client struct {
	rpc *rpc.Client
}

var (
	_ Meter      = (*Client)(nil)
	_ EgressSink = (*Client)(nil)
)

// NewClient returns a client of the usage service at baseURL (e.g.
// "http://usage:8080"), authenticating with keys. hc may be nil for the
// process's shared client (rpc.SharedHTTP): timeouts, and connection reuse
// suited to many concurrent uploads and viewers.
func NewClient(baseURL string, keys *authn.ServiceKeys, hc *http.Client) *Client {
	return &Client{rpc: rpc.New("usage", baseURL, keys, hc,
		ErrDailyLimit, ErrReservationNotFound, ErrReservationSettled, ErrInvalid, ErrInvalidUserID, ErrInvalidRange)}
}

// do makes one call; every call of this client is idempotent.
func (c *Client) do(ctx context.Context, op, method, path string, in, out any) error {
	return c.rpc.Call(ctx, op, method, path, in, out, true)
}

// ReserveUpload implements Meter.
func (c *Client) ReserveUpload(ctx context.Context, userID string, n int64, ttl time.Duration) (Reservation, error) {
	in := reserveRequest{ID: reserve.NewID(), UserID: userID, Bytes: n, TTLMS: reserve.Millis(ttl)}
	var out Reservation
	if err := c.do(ctx, "reserve upload", http.MethodPost, "/internal/v1/usage/uploads", in, &out); err != nil {
		return reserve.Unanswered(in.ID, err), err
	}
	return out, nil
}

// CommitUpload implements Meter.
func (c *Client) CommitUpload(ctx context.Context, reservationID string, actualBytes int64) error {
	return c.do(ctx, "commit upload", http.MethodPost, "/internal/v1/usage/uploads/"+url.PathEscape(reservationID)+"/commit",
		commitRequest{ActualBytes: actualBytes}, nil)
}

// ReleaseUpload implements Meter.
func (c *Client) ReleaseUpload(ctx context.Context, reservationID string) error {
	return c.do(ctx, "release upload", http.MethodPost, "/internal/v1/usage/uploads/"+url.PathEscape(reservationID)+"/release", nil, nil)
}

// RenewUpload implements Meter.
func (c *Client) RenewUpload(ctx context.Context, reservationID string, ttl time.Duration) error {
	return c.do(ctx, "renew upload", http.MethodPost, "/internal/v1/usage/uploads/"+url.PathEscape(reservationID)+"/renew",
		reserve.RenewRequest{TTLMS: reserve.Millis(ttl)}, nil)
}

// AddEgress implements Meter.
func (c *Client) AddEgress(ctx context.Context, batchID string, bytes map[string]int64) error {
	if len(bytes) == 0 {
		return nil
	}
	if batchID == "" {
		batchID = reserve.NewID()
	}
	return c.do(ctx, "add egress", http.MethodPost, "/internal/v1/usage/egress", egressRequest{BatchID: batchID, Bytes: bytes}, nil)
}

// Allowance implements Meter.
func (c *Client) Allowance(ctx context.Context, userID string) (int64, error) {
	var out allowanceResponse
	err := c.do(ctx, "allowance", http.MethodGet, "/internal/v1/usage/users/"+url.PathEscape(userID)+"/allowance", nil, &out)
	return out.AllowanceBytes, err
}

// Today implements Meter.
func (c *Client) Today(ctx context.Context, userID string) (Status, error) {
	var out Status
	err := c.do(ctx, "today", http.MethodGet, "/internal/v1/usage/users/"+url.PathEscape(userID), nil, &out)
	return out, err
}

// SetLimits implements Meter.
func (c *Client) SetLimits(ctx context.Context, userID string, l Limits) error {
	return c.do(ctx, "set limits", http.MethodPatch, "/internal/v1/usage/users/"+url.PathEscape(userID)+"/limits", l, nil)
}

// Lapsed implements Meter.
func (c *Client) Lapsed(ctx context.Context, grace time.Duration) (reserve.Lapsed, error) {
	var out reserve.Lapsed
	err := c.do(ctx, "lapsed", http.MethodGet, "/internal/v1/usage/uploads/lapsed?grace_ms="+strconv.FormatInt(grace.Milliseconds(), 10), nil, &out)
	return out, err
}

// Sweep implements Meter.
func (c *Client) Sweep(ctx context.Context) error {
	return c.do(ctx, "sweep", http.MethodPost, "/internal/v1/usage/sweep", nil, nil)
}
