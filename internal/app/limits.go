package app

import (
	"context"
	"fmt"
	"time"

	"github.com/reel-video/reel/internal/usage"
	"github.com/reel-video/reel/internal/users"
)

// limitsTimeout bounds one call of an admin's override to another service.
const limitsTimeout = 10 * time.Second

// limitSetter applies the overrides of the users admin route in the
// services that enforce them: storage (quota) and usage (daily limits).
// It resolves them at call time, because the users module starts before
// both: in process when they run here, else their HTTP clients.
//
// The two calls are not one transaction: if the second fails, the first
// stays applied and the admin gets an error; repeating the request is
// safe, since setting a limit is idempotent.
type limitSetter struct{ a *App }

// SetLimits implements users.LimitSetter.
func (l limitSetter) SetLimits(ctx context.Context, userID string, lim users.Limits) error {
	ctx, cancel := context.WithTimeout(ctx, limitsTimeout)
	defer cancel()
	if lim.StorageQuota != nil {
		q, err := l.a.storageQuota("users")
		if err != nil {
			return fmt.Errorf("%w: %w", users.ErrLimitsNotConfigured, err)
		}
		if err := q.SetQuota(ctx, userID, *lim.StorageQuota); err != nil {
			return fmt.Errorf("set storage quota: %w", err)
		}
	}
	if lim.DailyUpload != nil || lim.DailyEgress != nil {
		m, err := l.a.usageMeter("users")
		if err != nil {
			return fmt.Errorf("%w: %w", users.ErrLimitsNotConfigured, err)
		}
		if err := m.SetLimits(ctx, userID, usage.Limits{DailyUpload: lim.DailyUpload, DailyEgress: lim.DailyEgress}); err != nil {
			return fmt.Errorf("set daily limits: %w", err)
		}
	}
	return nil
}
