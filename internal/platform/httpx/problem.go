// Package httpx holds the HTTP plumbing every service shares: strict JSON
// decoding, problem+json errors, the middleware chain and the server.
package httpx

import (
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/obs"
)

// Problem is an RFC 9457 problem details document.
type Problem struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Detail    string            `json:"detail,omitempty"`
	Code      string            `json:"code"`
	RequestID string            `json:"request_id,omitempty"`
	Errors    map[string]string `json:"errors,omitempty"`
}

// StatusOf maps an error kind to its HTTP status. This is the one place where
// business errors become statuses.
func StatusOf(k errs.Kind) int {
	switch k {
	case errs.Invalid:
		return http.StatusBadRequest
	case errs.Unauthenticated:
		return http.StatusUnauthorized
	case errs.Forbidden:
		return http.StatusForbidden
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Conflict:
		return http.StatusConflict
	case errs.TooLarge:
		return http.StatusRequestEntityTooLarge
	case errs.Unsupported:
		return http.StatusUnsupportedMediaType
	case errs.Validation:
		return http.StatusUnprocessableEntity
	case errs.RateLimited:
		return http.StatusTooManyRequests
	case errs.Unavailable:
		return http.StatusServiceUnavailable
	case errs.Timeout:
		return http.StatusRequestTimeout
	default:
		return http.StatusInternalServerError
	}
}

// KindOf maps an HTTP status back to the error kind StatusOf maps to it,
// for clients that turn a service's problem answer into an error again;
// Internal for 500 and for statuses no kind has.
func KindOf(status int) errs.Kind {
	if status == http.StatusInternalServerError {
		return errs.Internal
	}
	// Every kind but Internal has a status of its own; unknown kinds map
	// to 500, so they never match here.
	for k := errs.Kind(1); k < 64; k++ {
		if StatusOf(k) == status {
			return k
		}
	}
	return errs.Internal
}

// ProblemOf turns any error into the problem document a client may see:
// classified errors keep their code and message, anything else becomes a
// generic 500 so internal error text never leaves the process.
func ProblemOf(err error) (Problem, *errs.Error) {
	e, ok := errs.As(err)
	if !ok {
		e = &errs.Error{Kind: errs.Internal, Code: "internal", Msg: "an internal error occurred"}
	}
	status := StatusOf(e.Kind)
	return Problem{
		Type:   "about:blank",
		Title:  http.StatusText(status),
		Status: status,
		Detail: e.Msg,
		Code:   e.Code,
		Errors: e.Fields,
	}, e
}

// Error writes err as problem+json. Unclassified errors and 5xx are logged
// with the request's logger; the client sees only the generic text.
func Error(w http.ResponseWriter, r *http.Request, err error) {
	p, e := ProblemOf(err)
	p.RequestID = obs.RequestFrom(r.Context()).ID
	if p.Status >= 500 {
		obs.Logger(r.Context(), slog.Default()).Error("request failed", "err", err, "status", p.Status)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	} else if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	if p.Status == http.StatusRequestTimeout {
		// The rest of a body too slow to read is not worth draining.
		w.Header().Set("Connection", "close")
	}
	WriteProblem(w, p)
}

// WriteProblem writes a ready problem document.
func WriteProblem(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// JSON writes v as a JSON response with the given status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// NoContent writes 204.
func NoContent(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }
