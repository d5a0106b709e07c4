package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
)

// Client is the storage service in another process, over its internal
// routes. It implements Quota for the videos and users services in split
// mode.
//
// Calls that are safe to repeat are retried a few times on network errors
// and 502/503/504: Commit, Release and Free are idempotent by design, and
// Reserve is made so by sending a reservation id chosen here. A service that cannot be reached is
// errs.ErrUnavailable (503); refusals come back as this package's sentinel
// errors, recognised by their problem code.
type Client struct {
	base     string
	keys     *authn.ServiceKeys
	http     *http.Client
	attempts int
	backoff  time.Duration
}

var _ Quota = (*Client)(nil)

// clientTimeout bounds one attempt of a call, body included. These are
// small JSON exchanges; anything slower is a service in trouble.
const clientTimeout = 10 * time.Second

// maxResponse bounds what the client reads of an answer.
const maxResponse = 1 << 20

// sharedHTTP is the default client of every Client in the process, so
// that they share one pool of warm connections.
var sharedHTTP = sync.OnceValue(func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Every upload makes a few calls; keep connections warm instead
	// of paying a handshake per call.
	t.MaxIdleConnsPerHost = 64
	t.ResponseHeaderTimeout = clientTimeout
	return &http.Client{Timeout: clientTimeout, Transport: t}
})

// NewClient returns a client of the storage service at baseURL (e.g.
// "http://storage:8080"), authenticating with keys. hc may be nil for the
// process's shared client: timeouts, and connection reuse suited to many
// concurrent uploads.
func NewClient(baseURL string, keys *authn.ServiceKeys, hc *http.Client) *Client {
	if hc == nil {
		hc = sharedHTTP()
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), keys: keys, http: hc, attempts: 3, backoff: 100 * time.Millisecond}
}

// Reserve implements Quota.
func (c *Client) Reserve(ctx context.Context, userID string, n int64, ttl time.Duration) (Reservation, error) {
	in := reserveRequest{ID: uuid.Must(uuid.NewV7()).String(), UserID: userID, Bytes: n, TTLMS: ttl.Milliseconds()}
	if ttl > 0 && in.TTLMS == 0 {
		in.TTLMS = 1
	}
	var out Reservation
	err := c.do(ctx, "reserve", http.MethodPost, "/internal/v1/storage/reservations", in, &out, true)
	return out, err
}

// Commit implements Quota.
func (c *Client) Commit(ctx context.Context, reservationID string, actualBytes int64, object string) error {
	return c.do(ctx, "commit", http.MethodPost, "/internal/v1/storage/reservations/"+url.PathEscape(reservationID)+"/commit",
		commitRequest{ActualBytes: actualBytes, Object: object}, nil, true)
}

// Release implements Quota.
func (c *Client) Release(ctx context.Context, reservationID string) error {
	return c.do(ctx, "release", http.MethodPost, "/internal/v1/storage/reservations/"+url.PathEscape(reservationID)+"/release", nil, nil, true)
}

// Free implements Quota.
func (c *Client) Free(ctx context.Context, userID, object string) (int64, error) {
	var out freeResponse
	err := c.do(ctx, "free", http.MethodPost, "/internal/v1/storage/users/"+url.PathEscape(userID)+"/free", objectRequest{Object: object}, &out, true)
	return out.FreedBytes, err
}

// Usage implements Quota.
func (c *Client) Usage(ctx context.Context, userID string) (Usage, error) {
	var out Usage
	err := c.do(ctx, "usage", http.MethodGet, "/internal/v1/storage/users/"+url.PathEscape(userID), nil, &out, true)
	return out, err
}

// SetQuota implements Quota.
func (c *Client) SetQuota(ctx context.Context, userID string, quota int64) error {
	return c.do(ctx, "set quota", http.MethodPut, "/internal/v1/storage/users/"+url.PathEscape(userID)+"/quota", quotaRequest{QuotaBytes: &quota}, nil, true)
}

// do makes one call, retrying it when idempotent.
func (c *Client) do(ctx context.Context, op, method, path string, in, out any, idempotent bool) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("storage client: %s: encode: %w", op, err)
		}
	}
	attempts := 1
	if idempotent {
		attempts = c.attempts
	}
	var err error
	for i := range attempts {
		if i > 0 {
			// Exponential backoff with jitter, so a restarting service is
			// not hit by every caller in lockstep.
			d := c.backoff<<(i-1) + rand.N(c.backoff)
			select {
			case <-ctx.Done():
				return fmt.Errorf("storage client: %s: %w", op, errors.Join(ctx.Err(), err))
			case <-time.After(d):
			}
		}
		var retry bool
		retry, err = c.once(ctx, method, path, body, out)
		if err == nil || !retry || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("storage client: %s: %w", op, err)
	}
	return nil
}

// once makes one attempt and reports whether a failure is worth retrying.
func (c *Client) once(ctx context.Context, method, path string, body []byte, out any) (retry bool, err error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return false, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	m := obs.RequestFrom(ctx)
	if m.ID != "" {
		req.Header.Set("X-Request-ID", m.ID)
	}
	if m.IP != "" {
		req.Header.Set(HeaderClientIP, m.IP)
	}
	if m.UserAgent != "" {
		req.Header.Set(HeaderClientUserAgent, m.UserAgent)
	}
	if err := c.keys.Authorize(req); err != nil {
		return false, err
	}
	res, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return true, fmt.Errorf("%w: %w", errs.ErrUnavailable, err)
	}
	defer func() {
		// Drain so the connection goes back to the pool.
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxResponse))
		_ = res.Body.Close()
	}()
	if res.StatusCode/100 == 2 {
		if out == nil || res.StatusCode == http.StatusNoContent {
			return false, nil
		}
		if err := json.NewDecoder(io.LimitReader(res.Body, maxResponse)).Decode(out); err != nil {
			return false, fmt.Errorf("decode answer: %w", err)
		}
		return false, nil
	}
	return problemError(res)
}

// problemError turns an error answer back into the sentinel the service
// returned, found by its code.
func problemError(res *http.Response) (retry bool, err error) {
	var p struct {
		Code   string            `json:"code"`
		Detail string            `json:"detail"`
		Errors map[string]string `json:"errors"`
	}
	_ = json.NewDecoder(io.LimitReader(res.Body, maxResponse)).Decode(&p)
	if res.StatusCode >= 500 {
		retry = res.StatusCode == http.StatusBadGateway || res.StatusCode == http.StatusServiceUnavailable || res.StatusCode == http.StatusGatewayTimeout
		return retry, fmt.Errorf("%w: status %d %s", errs.ErrUnavailable, res.StatusCode, p.Code)
	}
	for _, e := range []*errs.Error{ErrQuotaExceeded, ErrReservationNotFound, ErrReservationSettled, ErrInvalid, ErrInvalidUserID} {
		if e.Code == p.Code && httpx.StatusOf(e.Kind) == res.StatusCode {
			c := e.WithFields(p.Errors)
			if p.Detail != "" {
				c = c.WithMsg(p.Detail)
			}
			return false, c
		}
	}
	// Anything else (a refused service credential, a malformed request)
	// is a bug or a misconfiguration here, not the end user's doing: it
	// stays unclassified, so the user sees a 500 and the log the reason.
	return false, fmt.Errorf("unexpected answer: status %d %s: %s", res.StatusCode, p.Code, p.Detail)
}
