// Package rpc is reel's calls between its services: JSON over HTTP to
// /internal/v1 routes with a service credential.
//
// It exists so that the retry policy is written once, not once per client:
// which failures are tried again (network errors and 502/503/504, for
// calls that are safe to repeat), how often (a bounded number of attempts)
// and how far apart (exponential backoff with jitter). Around it sits what
// every such call needs: the service credential, the end user's request id,
// address and user agent passed on, answers drained so that connections go
// back to one pooled http.Client per process, and problem+json refusals
// turned back into the provider's sentinel *errs.Error (Retry-After kept).
// A provider's Client (storage.Client, usage.Client) names its routes and
// its sentinels and calls Client.Call; its internal routes go through
// Internal, which believes the forwarded user metadata only behind a
// service credential.
package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/backoff"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
)

// Headers through which a calling service passes on the end user's address
// and user agent, so that events recorded on an internal route (a refused
// reservation) describe the user's request, not the service's. They are
// believed only on internal routes, behind a service credential.
const (
	HeaderClientIP        = "X-Reel-Client-Ip"
	HeaderClientUserAgent = "X-Reel-Client-User-Agent"
)

// Timeout bounds one attempt of a call, body included. These are small
// JSON exchanges; anything slower is a service in trouble.
const Timeout = 10 * time.Second

// maxResponse bounds what a client reads of an answer.
const maxResponse = 1 << 20

// The default retry policy: attempts of an idempotent call, and the first
// pause between two of them (doubled each time, plus up to as much jitter).
const (
	defaultAttempts = 3
	defaultBackoff  = 100 * time.Millisecond
)

// SharedHTTP returns the default http.Client of every Client in the
// process, so that they share one pool of warm connections (the videos
// process calls storage and usage, and usage through two clients: one for
// uploads, one for its egress meter).
var SharedHTTP = sync.OnceValue(func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Every upload makes a few calls; keep connections warm instead of
	// paying a handshake per call.
	t.MaxIdleConnsPerHost = 64
	// Bounded per host only: the services called are few, and each is to
	// keep its 64 however many others share the pool.
	t.MaxIdleConns = 0
	t.ResponseHeaderTimeout = Timeout
	return &http.Client{Timeout: Timeout, Transport: t}
})

// Client calls one service's internal routes.
type Client struct {
	name     string
	base     string
	keys     *authn.ServiceKeys
	http     *http.Client
	attempts int
	backoff  time.Duration
	known    []*errs.Error
}

// New returns a client of the service name (it prefixes errors: "storage
// client: reserve: …") at baseURL (e.g. "http://storage:8080"),
// authenticating with keys. hc may be nil for SharedHTTP. known are the
// sentinels the service may answer with; a refusal matching one by problem
// code and status comes back as it.
func New(name, baseURL string, keys *authn.ServiceKeys, hc *http.Client, known ...*errs.Error) *Client {
	if hc == nil {
		hc = SharedHTTP()
	}
	return &Client{
		name: name, base: strings.TrimRight(baseURL, "/"), keys: keys, http: hc,
		attempts: defaultAttempts, backoff: defaultBackoff, known: known,
	}
}

// Call sends in (nil for no body) as JSON with method to path under the
// base URL and decodes a 2xx answer into out (nil to ignore it). op names
// the call in errors. An idempotent call is tried again, after a pause, on
// network errors and 502/503/504. A service that cannot be reached is
// errs.ErrUnavailable; a refusal is one of the known sentinels, or else an
// unclassified error (a 500 to the end user).
func (c *Client) Call(ctx context.Context, op, method, path string, in, out any, idempotent bool) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("%s client: %s: encode: %w", c.name, op, err)
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
			if cerr := backoff.Sleep(ctx, backoff.Delay(c.backoff, i)); cerr != nil {
				return fmt.Errorf("%s client: %s: %w", c.name, op, errors.Join(cerr, err))
			}
		}
		var retry bool
		retry, err = c.once(ctx, method, path, body, out)
		if err == nil || !retry || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("%s client: %s: %w", c.name, op, err)
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
	return c.problemError(res)
}

// problemError turns an error answer back into the sentinel the service
// returned, found by its code.
func (c *Client) problemError(res *http.Response) (retry bool, err error) {
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
	for _, e := range c.known {
		if e.Code == p.Code && httpx.StatusOf(e.Kind) == res.StatusCode {
			s := e.WithFields(p.Errors)
			if p.Detail != "" {
				s = s.WithMsg(p.Detail)
			}
			if secs, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && secs > 0 {
				s = s.WithRetryAfter(time.Duration(secs) * time.Second)
			}
			return false, s
		}
	}
	// Anything else (a refused service credential, a malformed request)
	// is a bug or a misconfiguration here, not the end user's doing: it
	// stays unclassified, so the user sees a 500 and the log the reason.
	return false, fmt.Errorf("unexpected answer: status %d %s: %s", res.StatusCode, p.Code, p.Detail)
}

// Internal wraps the handler of an internal route: only callers holding a
// service credential signed with keys get in, and for them the request
// metadata becomes the end user's, as passed on by the calling service
// (see ClientMeta).
func Internal(keys *authn.ServiceKeys, h http.Handler) http.Handler {
	return keys.RequireService(ClientMeta(h))
}

// ClientMeta replaces the request metadata with the end user's address and
// user agent, as passed on by the calling service in HeaderClientIP and
// HeaderClientUserAgent. It is to be used only behind a service
// credential, as Internal does.
func ClientMeta(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, ua := r.Header.Get(HeaderClientIP), r.Header.Get(HeaderClientUserAgent)
		if ip != "" || ua != "" {
			m := obs.RequestFrom(r.Context())
			if ip != "" {
				m.IP = truncate(ip, 64)
			}
			if ua != "" {
				m.UserAgent = truncate(ua, 512)
			}
			r = r.WithContext(obs.WithRequest(r.Context(), m))
		}
		next.ServeHTTP(w, r)
	})
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// errBadDuration answers an internal route's malformed duration parameter.
var errBadDuration = errs.New(errs.Validation, "validation_failed", "a duration parameter is not valid")

// DurationParam reads the query parameter name of r as a whole number of
// milliseconds, at least 0 and at most a year; absent is 0.
func DurationParam(r *http.Request, name string) (time.Duration, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 0 || ms > 366*24*time.Hour.Milliseconds() {
		return 0, errBadDuration.WithFields(map[string]string{name: "must be milliseconds, from 0 to a year"})
	}
	return time.Duration(ms) * time.Millisecond, nil
}
