package usage_test

import (
	"context"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/authn/authntest"
	"github.com/reel-video/reel/internal/platform/rpc/rpctest"
	"github.com/reel-video/reel/internal/usage"
)

// TestClientRefusals: each refusal of the usage service comes back over
// HTTP as this package's sentinel, at once, and the daily limit with its
// Retry-After. How calls are retried, and what becomes of other answers,
// is rpc's and tested there.
func TestClientRefusals(t *testing.T) {
	keys, err := authn.NewServiceKeys(serviceKey, "videos")
	if err != nil {
		t.Fatal(err)
	}
	user := authntest.NewUserID()
	rpctest.Refusals(t, func(ctx context.Context, url string) error {
		_, err := usage.NewClient(url, keys, nil).ReserveUpload(ctx, user, 100, time.Hour)
		return err
	}, usage.ErrDailyLimit.WithRetryAfter(time.Minute), usage.ErrReservationNotFound, usage.ErrReservationSettled,
		usage.ErrInvalid, usage.ErrInvalidUserID, usage.ErrInvalidRange)
}
