package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/authn/authntest"
	"github.com/reel-video/reel/internal/platform/rpc/rpctest"
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
	rpctest.Refusals(t, func(ctx context.Context, url string) error {
		_, err := storage.NewClient(url, keys, nil).Reserve(ctx, user, 100, time.Hour)
		return err
	}, storage.ErrQuotaExceeded, storage.ErrReservationNotFound, storage.ErrReservationSettled, storage.ErrInvalid, storage.ErrInvalidUserID)
}
