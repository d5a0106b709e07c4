// Package compat serves the routes of the original Node.js system (five
// Express services on Supabase and Cloudinary) on top of reel's services, so
// that its web client and scripts keep working when pointed at reel. It
// holds no business logic: each route translates the original's request
// into a call of a reel service's Go API and the answer back into the
// original's shape, with the original's holes closed (authentication where
// it had none, 401 instead of 500 for a bad token, no internal error text).
//
// The surface is split by the service that owns it, so that each reel
// service serves its own part when it runs alone (NewUsers, NewLogs,
// NewVideos, NewStorage, NewUsage) and the all-in-one process serves them
// all. Error bodies are the original's {message} or {message, error}, never
// problem+json.
package compat

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
)

// mib is the original's "MB": sizes there are bytes / (1024 * 1024).
const mib = 1 << 20

// maxBody bounds the JSON bodies of the compatibility routes; the largest
// (a log line) is far smaller.
const maxBody = 64 << 10

// Messages that several routes share. The original answered most of these
// cases with a 500 carrying the exception text; reel answers with the
// status the case deserves and the original's wording where it had one.
const (
	msgNoToken       = "Token not provided"
	msgBadToken      = "Invalid or expired token"
	msgAdminOnly     = "Access denied. Admin role required."
	msgBadStart      = "Invalid start value"
	msgBadStartWhy   = "start must be a whole number of at least 0"
	msgBadBody       = "Invalid request body"
	msgUnavailable   = "Service temporarily unavailable, try again shortly"
	msgTooLarge      = "Request body too large"
	retryUnavailable = 5 * time.Second
)

// body is the original's error answer: {message} or {message, error}.
type body struct {
	Message string `json:"message"`
	Error   string `json:"error,omitempty"`
}

// failure is an answer in the original's error shape. Handlers return it
// for the cases the original named; anything else goes through answer's
// mapping of reel's error kinds.
type failure struct {
	status     int
	message    string
	detail     string
	retryAfter time.Duration
}

func (f *failure) Error() string {
	if f.detail != "" {
		return fmt.Sprintf("%d %s: %s", f.status, f.message, f.detail)
	}
	return fmt.Sprintf("%d %s", f.status, f.message)
}

// fail returns a failure with the given status and message.
func fail(status int, message string) *failure {
	return &failure{status: status, message: message}
}

// failWhy returns a failure whose body also carries an error detail.
func failWhy(status int, message, detail string) *failure {
	return &failure{status: status, message: message, detail: detail}
}

// handler is a compatibility route: it returns its error so that every
// error reaches the client in the original's shape through answer.
type handler struct {
	// fallback is the original's message for an unexpected failure of
	// this route (e.g. "Error fetching videos"), shown without the
	// internal text the original appended.
	fallback string
	fn       func(w http.ResponseWriter, r *http.Request) error
}

// ServeHTTP implements http.Handler.
func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.fn(w, r); err != nil {
		answer(w, r, err, h.fallback)
	}
}

// answer writes err in the original's error shape. Failures are written as
// they are; reel's classified errors keep their status, with fallback as
// the message and the error's client-safe text as the detail; anything
// else is a 500 with fallback alone, its text kept for the log.
func answer(w http.ResponseWriter, r *http.Request, err error, fallback string) {
	var f *failure
	if !errors.As(err, &f) {
		f = translate(err, fallback)
	}
	if f.status >= 500 {
		obs.Logger(r.Context(), slog.Default()).Error("compat request failed", "err", err, "status", f.status)
	}
	if f.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="reel"`)
	}
	if f.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(f.retryAfter.Seconds()))))
	}
	httpx.JSON(w, f.status, body{Message: f.message, Error: f.detail})
}

// translate maps an error of a reel service that the handler did not
// translate itself.
func translate(err error, fallback string) *failure {
	e, ok := errs.As(err)
	if !ok || e.Kind == errs.Internal {
		return fail(http.StatusInternalServerError, fallback)
	}
	status := httpx.StatusOf(e.Kind)
	switch e.Kind {
	case errs.Unavailable:
		retry := e.RetryAfter
		if retry <= 0 {
			retry = retryUnavailable
		}
		return &failure{status: status, message: msgUnavailable, retryAfter: retry}
	case errs.Unauthenticated:
		return fail(status, msgBadToken)
	case errs.Forbidden:
		return failWhy(status, "Access denied.", e.Msg)
	case errs.TooLarge:
		return failWhy(status, msgTooLarge, e.Msg)
	case errs.RateLimited:
		return &failure{status: status, message: e.Msg, retryAfter: e.RetryAfter}
	}
	return failWhy(status, fallback, e.Msg)
}

// auth authenticates the original client's bearer tokens, which are reel
// access tokens, answering 401 {message} rather than problem+json.
type auth struct {
	v *authn.Verifier
}

// caller returns the authenticated caller of r. A missing token and a bad
// one get the original's two messages, as 401 instead of its 500.
func (a auth) caller(r *http.Request) (authn.Caller, error) {
	if authn.BearerToken(r) == "" {
		return authn.Caller{}, fail(http.StatusUnauthorized, msgNoToken)
	}
	c, err := a.v.Authenticate(r)
	if e, ok := errs.As(err); ok && e.Kind == errs.Unavailable {
		// The users service's keys cannot be fetched: the token may well
		// be good, so the client should retry, not log in again (503
		// with Retry-After, as the v1 API answers).
		return authn.Caller{}, translate(err, msgBadToken)
	}
	if err != nil {
		return authn.Caller{}, fail(http.StatusUnauthorized, msgBadToken)
	}
	return c, nil
}

// require wraps a handler that needs a user: the caller is authenticated
// first and put in the request's context, so that reel's services record
// it in their activity events.
func (a auth) require(fallback string, fn func(w http.ResponseWriter, r *http.Request, c authn.Caller) error) http.Handler {
	return handler{fallback: fallback, fn: func(w http.ResponseWriter, r *http.Request) error {
		c, err := a.caller(r)
		if err != nil {
			return err
		}
		r = r.WithContext(authn.WithCaller(r.Context(), c))
		return fn(w, r, c)
	}}
}

// decodeJSON reads a JSON object from the body into dst. Unlike reel's own
// routes it ignores unknown fields, as the original (Express) did, so that
// clients sending extra fields keep working.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return failWhy(http.StatusBadRequest, msgBadBody, "the request body must be application/json")
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if err := dec.Decode(dst); err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return failWhy(http.StatusRequestEntityTooLarge, msgTooLarge, fmt.Sprintf("the request body must not exceed %d bytes", maxErr.Limit))
		}
		return failWhy(http.StatusBadRequest, msgBadBody, "the request body must be a JSON object")
	}
	return nil
}

// parseStart reads the original's offset pagination parameter: absent
// means 0; anything but a whole number of at least 0 is refused (the
// original passed it unchecked to the database and answered 500).
func parseStart(r *http.Request) (int, error) {
	raw := r.URL.Query().Get("start")
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 0 {
		return 0, failWhy(http.StatusBadRequest, msgBadStart, msgBadStartWhy)
	}
	return n, nil
}

// toMiB converts bytes to the original's MB, a number.
func toMiB(b int64) float64 { return float64(b) / mib }

// round2 rounds to two decimals, as the original's toFixed(2) did for the
// sizes it stored.
func round2(v float64) float64 { return math.Round(v*100) / 100 }

// quotaMiB is a quota or limit in MiB; -1 (unlimited) stays -1.
func quotaMiB(b int64) float64 {
	if b < 0 {
		return -1
	}
	return round2(toMiB(b))
}

// percentage is used/limit in percent with two decimals. An unlimited
// limit is never used up ("0.00"); a zero limit is (the original client
// refuses uploads from 100 up).
func percentage(used, limit int64) string {
	switch {
	case limit < 0:
		return "0.00"
	case limit == 0:
		return "100.00"
	}
	return fmt.Sprintf("%.2f", float64(used)/float64(limit)*100)
}
