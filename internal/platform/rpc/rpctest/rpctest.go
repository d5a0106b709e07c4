// Package rpctest checks a provider's rpc client against the refusals of
// its service, over a real socket.
package rpctest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
)

// Refusals runs call, for each of sentinels, against a server that answers
// every request with that sentinel as the service would (problem+json,
// Retry-After included), and checks that it comes back as the sentinel,
// with its Retry-After, after one attempt. call makes one call of the
// client under test to the service at url.
func Refusals(t *testing.T, call func(ctx context.Context, url string) error, sentinels ...*errs.Error) {
	t.Helper()
	for _, e := range sentinels {
		t.Run(e.Code, func(t *testing.T) {
			var hits atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				httpx.Error(w, r, e)
			}))
			t.Cleanup(srv.Close)
			err := call(t.Context(), srv.URL)
			if !errors.Is(err, e) || hits.Load() != 1 {
				t.Fatalf("err %v after %d attempts, want %s after 1", err, hits.Load(), e.Code)
			}
			if got, _ := errs.As(err); got.RetryAfter != e.RetryAfter {
				t.Fatalf("err %v with a Retry-After of %s, want %s", err, got.RetryAfter, e.RetryAfter)
			}
		})
	}
}
