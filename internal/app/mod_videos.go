package app

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reel-video/reel/internal/compat"
	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/probe"
	"github.com/reel-video/reel/internal/videos"
)

// How often the videos module's periodic jobs run. Maintenance (finishing
// interrupted quota steps, failing abandoned finalisations, purging the
// trash) is cheap when there is nothing to do; tus expiry works in hours.
const (
	videosMaintainEvery = time.Minute
	videosExpireEvery   = 10 * time.Minute
)

func initVideos(ctx context.Context, a *App) error {
	sc := schemas["videos"]
	db, err := a.Database(ctx, "videos", sc.migrations, sc.table)
	if err != nil {
		return err
	}
	events, err := a.Outbox(ctx, "videos", db)
	if err != nil {
		return err
	}
	blobs, err := blob.Open(ctx, a.cfg.Videos.BlobURL, filepath.Join(a.cfg.DataDir, "blobs"), blob.WithEnv(os.Getenv))
	if err != nil {
		return fmt.Errorf("videos blob store: %w", err)
	}
	a.Ready("blobs:videos", blobs.Ping)
	spool := filepath.Join(a.cfg.DataDir, "uploads", "spool")
	prober := probe.New(0)
	prober.TempDir = spool // posters beside the uploads, on the data volume
	if !prober.Available() {
		a.log.Warn("ffmpeg/ffprobe not found on PATH: MP4, QuickTime, WebM and Matroska uploads are still read in Go; other files are accepted when their bytes look like a video, without duration or size; no video gets a poster (install ffmpeg)")
	}
	quota, err := a.storageQuota("videos")
	if err != nil {
		return err
	}
	meter, err := a.usageMeter("videos")
	if err != nil {
		return err
	}
	// Before this module's own background tasks, so the meter stops (and
	// makes its last flush) after them.
	egress, err := a.egressMeter("videos")
	if err != nil {
		return err
	}
	log := a.log.With("service", "videos")
	svc, err := videos.New(ctx, db, events, videos.Deps{
		Blobs: blobs, Prober: prober, Quota: quota, Limit: meter, Egress: egress,
	}, videos.Config{
		MaxUploadSize:  a.cfg.Videos.MaxUploadSize,
		TrashRetention: a.cfg.Videos.TrashRetention,
		PlaybackTTL:    a.cfg.Videos.PlaybackTTL,
		SigningKey:     a.cfg.Videos.SigningKey,
		SpoolDir:       spool,
	}, log)
	if err != nil {
		return err
	}
	a.svc.videos = svc
	videos.NewHandler(svc, a.verifier, videos.HandlerConfig{
		TrustedProxies: a.cfg.HTTP.TrustedProxies, MediaChunk: a.cfg.Videos.MediaChunk,
	}).Routes(a)
	// Resumable uploads wait on this process's disk: see
	// docs/decisions/0003-tus-uploads-single-writer.md.
	tus, err := videos.NewTUS(svc, a.verifier, filepath.Join(a.cfg.DataDir, "uploads", "tus"), a.cfg.HTTP.TrustedProxies, log)
	if err != nil {
		return err
	}
	tus.Routes(a)
	compat.NewVideos(svc, a.verifier, compat.VideosConfig{
		Limits:         compat.ServiceLimits{Storage: quota, Usage: meter},
		TrustedProxies: a.cfg.HTTP.TrustedProxies,
	}).Routes(a)
	if err := registerPosterMetrics(a.prom, svc); err != nil {
		return err
	}
	a.Background("videos-posters", svc.RunPosters)
	a.Every("videos-maintenance", videosMaintainEvery, svc.Maintain)
	a.Every("videos-uploads-expiry", videosExpireEvery, tus.Expire)
	return a.document("videos")
}

// registerPosterMetrics exposes the poster worker: the videos waiting for
// a poster (a COUNT per scrape, over every replica's videos) and what this
// process's worker did with the ones it took.
func registerPosterMetrics(reg prometheus.Registerer, svc *videos.Service) error {
	due := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "reel_video_posters_due",
		Help: "Videos, ready and not in the trash, whose poster is still to be cut (all replicas).",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := svc.PostersDue(ctx)
		if err != nil {
			return math.NaN()
		}
		return float64(n)
	})
	if err := reg.Register(due); err != nil {
		return fmt.Errorf("register poster metrics: %w", err)
	}
	c := svc.PosterCounts()
	for outcome, v := range map[string]*atomic.Int64{"cut": &c.Cut, "none": &c.None, "failed": &c.Failed, "dropped": &c.Dropped} {
		f := prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "reel_video_posters_total",
			Help:        "Posters this process's worker handled, by outcome: cut; none (nothing to cut, no room, given up); failed (tried again later); dropped (the video went to the trash meanwhile).",
			ConstLabels: prometheus.Labels{"outcome": outcome},
		}, func() float64 { return float64(v.Load()) })
		if err := reg.Register(f); err != nil {
			return fmt.Errorf("register poster metrics: %w", err)
		}
	}
	skipped := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "reel_video_poster_sources_skipped_total",
		Help: "Uploads not kept in the spool for their poster because its disk was short of its reserve (a tenth, at least 1 GiB): their posters are cut from the stored video.",
	}, func() float64 { return float64(c.SourcesSkipped.Load()) })
	if err := reg.Register(skipped); err != nil {
		return fmt.Errorf("register poster metrics: %w", err)
	}
	return nil
}
