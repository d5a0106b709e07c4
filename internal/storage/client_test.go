package storage_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/authn/authntest"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/storage"
)

// TestClientRefusals: each refusal of the storage service comes back over
// HTTP as this package's sentinel, at once. How calls are retried, and
// what becomes of other answers, is rpc's and tested there.
func TestClientRefusals(t *testing.T) {
	keys, err := authn.NewServiceKeys(serviceKey, "videos")
	if err != nil {
		t.Fatal(err)
	}
	user := authntest.NewUserID()
	for _, e := range []*errs.Error{storage.ErrQuotaExceeded, storage.ErrReservationNotFound, storage.ErrReservationSettled, storage.ErrInvalid, storage.ErrInvalidUserID} {
		t.Run(e.Code, func(t *testing.T) {
			var hits atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				httpx.Error(w, r, e)
			}))
			t.Cleanup(srv.Close)
			_, err := storage.NewClient(srv.URL, keys, nil).Reserve(t.Context(), user, 100, time.Hour)
			if !errors.Is(err, e) || hits.Load() != 1 {
				t.Fatalf("err %v after %d attempts, want %s after 1", err, hits.Load(), e.Code)
			}
		})
	}
}
