package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/reel-video/reel/internal/config"
	"github.com/reel-video/reel/internal/media"
	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/storage"
	"github.com/reel-video/reel/internal/usage"
	"github.com/reel-video/reel/internal/videos"
)

// Check runs the consistency check from the command line (reel check):
// in this process, on the configured databases of the videos, storage and
// usage services and the blob store, as the all-in-one would (the
// services' databases must be reachable from here; in a split deployment
// the periodic check job asks the services over HTTP instead).
func Check(ctx context.Context, cfg *config.Config, log *slog.Logger, opt videos.CheckOptions) (*videos.CheckReport, error) {
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	open := func(name string) (*serviceDB, error) {
		db, ob, err := openOffline(ctx, cfg, log, name)
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { ob.Wait(); _ = db.Close() })
		return &serviceDB{db: db, ob: ob}, nil
	}
	st, err := open("storage")
	if err != nil {
		return nil, err
	}
	us, err := open("usage")
	if err != nil {
		return nil, err
	}
	vs, err := open("videos")
	if err != nil {
		return nil, err
	}
	quota := storage.New(st.db, st.ob, storage.Config{DefaultQuota: cfg.Storage.Quota}, log.With("service", "storage"))
	limits := usage.New(us.db, us.ob, usage.Config{DailyUpload: cfg.Usage.DailyUpload, DailyEgress: cfg.Usage.DailyEgress}, log.With("service", "usage"))
	blobs, err := blob.Open(ctx, cfg.Videos.BlobURL, filepath.Join(cfg.DataDir, "blobs"), blob.WithEnv(os.Getenv))
	if err != nil {
		return nil, fmt.Errorf("videos blob store: %w", err)
	}
	if err := blobs.Ping(ctx); err != nil {
		return nil, fmt.Errorf("videos blob store: %w", err)
	}
	svc, err := videos.New(ctx, vs.db, vs.ob, videos.Deps{
		Blobs: blobs, Prober: media.NewProber(0), Quota: quota, Ledger: quota, UploadHolds: limits,
	}, videos.Config{
		MaxUploadSize: cfg.Videos.MaxUploadSize, TrashRetention: cfg.Videos.TrashRetention,
		SigningKey: cfg.Videos.SigningKey, SpoolDir: filepath.Join(cfg.DataDir, "uploads", "spool"),
	}, log.With("service", "videos"))
	if err != nil {
		return nil, err
	}
	defer svc.Close()
	return svc.Check(ctx, opt)
}

type serviceDB struct {
	db *sqldb.DB
	ob *outbox.Outbox
}
