package reserve

import (
	"context"
	"net/http"
	"time"

	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/rpc"
)

// The internal routes that storage and usage serve alike over their
// ledgers: each service mounts them at its own paths, with its own call.

// RenewRequest is the body of a renew route.
type RenewRequest struct {
	TTLMS int64 `json:"ttl_ms"`
}

// TTL reads a reservation's time to live from its wire form
// (milliseconds): positive and at most MaxTTL.
func TTL(ms int64) (time.Duration, error) {
	if ms <= 0 || ms > MaxTTL.Milliseconds() {
		return 0, Invalid("ttl_ms", "must be positive and at most a week")
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// RenewHandler serves a renew route: the hold named by the path's {id}
// is kept for the body's ttl_ms more.
func RenewHandler(renew func(ctx context.Context, id string, ttl time.Duration) error) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in RenewRequest
		if err := httpx.Decode(w, r, &in, 0); err != nil {
			return err
		}
		ttl, err := TTL(in.TTLMS)
		if err != nil {
			return err
		}
		if err := renew(r.Context(), r.PathValue("id"), ttl); err != nil {
			return err
		}
		httpx.NoContent(w)
		return nil
	}
}

// LapsedHandler serves a lapsed route: the holds still held past their
// expiry by more than the query's grace_ms.
func LapsedHandler(lapsed func(ctx context.Context, grace time.Duration) (Lapsed, error)) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		grace, err := rpc.DurationParam(r, "grace_ms")
		if err != nil {
			return err
		}
		l, err := lapsed(r.Context(), grace)
		if err != nil {
			return err
		}
		httpx.JSON(w, http.StatusOK, l)
		return nil
	}
}

// SweepHandler serves a sweep route: the service's sweep, run now.
func SweepHandler(sweep func(ctx context.Context) error) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := sweep(r.Context()); err != nil {
			return err
		}
		httpx.NoContent(w)
		return nil
	}
}
