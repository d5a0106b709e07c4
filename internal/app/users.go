package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/users"
)

// userLookup answers the storage and usage modules' question whether an
// account exists (storage.Users, usage.Users): the users service when it
// runs in this process, else its HTTP client at REEL_USERS_URL (caller
// names the asking module in service credentials). Like storageQuota it
// resolves at each call, since users may start after the module asking.
type userLookup struct {
	a      *App
	caller string
}

// UserExists implements storage.Users and usage.Users.
func (u userLookup) UserExists(ctx context.Context, id string) (bool, error) {
	a := u.a
	if a.present["users"] {
		if a.svc.users == nil {
			return false, fmt.Errorf("%w: the users service has not started", errs.ErrUnavailable)
		}
		return a.svc.users.UserExists(ctx, id)
	}
	base, ok := a.cfg.URLs["users"]
	if !ok {
		return false, fmt.Errorf("%w: %w", errs.ErrUnavailable, errNoURL("users"))
	}
	if a.cfg.ServiceKey == "" {
		return false, fmt.Errorf("%w: %w", errs.ErrUnavailable,
			errors.New("the users service is not in this process: set REEL_SERVICE_KEY (the same in every process) so this one may call it"))
	}
	keys, err := authn.NewServiceKeys(a.cfg.ServiceKey, u.caller)
	if err != nil {
		return false, err
	}
	return users.NewClient(base, keys, nil).UserExists(ctx, id)
}
