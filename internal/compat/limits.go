package compat

import (
	"context"
	"fmt"

	"github.com/reel-video/reel/internal/storage"
	"github.com/reel-video/reel/internal/usage"
)

// StorageFigures is the storage service as ServiceLimits reads it
// (*storage.Service in process, *storage.Client in split mode).
type StorageFigures interface {
	Usage(ctx context.Context, userID string) (storage.Usage, error)
}

// UsageFigures is the usage service as ServiceLimits reads it
// (*usage.Service in process, *usage.Client in split mode).
type UsageFigures interface {
	Today(ctx context.Context, userID string) (usage.Status, error)
}

// ServiceLimits are the user's own limits, overrides included, as the
// storage and usage services tell them. They are only asked when an upload
// is refused, to quote the numbers.
type ServiceLimits struct {
	Storage StorageFigures
	Usage   UsageFigures
}

// StorageQuota implements Limits.
func (l ServiceLimits) StorageQuota(ctx context.Context, userID string) (int64, error) {
	u, err := l.Storage.Usage(ctx, userID)
	if err != nil {
		return 0, fmt.Errorf("storage quota: %w", err)
	}
	return u.QuotaBytes, nil
}

// DailyUploadLimit implements Limits.
func (l ServiceLimits) DailyUploadLimit(ctx context.Context, userID string) (int64, error) {
	st, err := l.Usage.Today(ctx, userID)
	if err != nil {
		return 0, fmt.Errorf("daily upload limit: %w", err)
	}
	return st.Upload.LimitBytes, nil
}
