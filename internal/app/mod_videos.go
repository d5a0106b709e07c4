package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reel-video/reel/internal/compat"
	"github.com/reel-video/reel/internal/media"
	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/queue"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/videos"
)

// Tasks of the videos service that every process runs on its own, rather
// than as jobs that one replica runs for all (the maintenance and the
// purge, videos/workers.go): each concerns files on this process's disk.
const (
	// videosExpireEvery: tus uploads live in this replica's directory,
	// and a transfer in progress is known only to the replica serving it.
	videosExpireEvery = 10 * time.Minute
	// videosSpoolEvery: the spool (uploads arriving, poster sources,
	// posters) is this process's scratch directory.
	videosSpoolEvery = time.Hour
)

func initVideos(ctx context.Context, a *App) error {
	svc, err := a.videosService(ctx, true)
	if err != nil {
		return err
	}
	a.svc.videos = svc
	videos.NewHandler(svc, a.verifier, videos.HandlerConfig{
		TrustedProxies: a.cfg.HTTP.TrustedProxies, MediaChunk: a.cfg.Videos.MediaChunk,
	}).Routes(a)
	// Resumable uploads wait on this process's disk, or on a directory
	// the replicas share: see docs/decisions/0003-tus-uploads-single-writer.md
	// and 0016-transcode-rescue.md.
	tus, err := videos.NewTUS(svc, a.verifier, a.cfg.Videos.TusDir, a.cfg.HTTP.TrustedProxies, a.log.With("service", "videos"))
	if err != nil {
		return err
	}
	tus.Routes(a)
	quota, err := a.storageQuota("videos")
	if err != nil {
		return err
	}
	meter, err := a.usageMeter("videos")
	if err != nil {
		return err
	}
	compat.NewVideos(svc, a.verifier, compat.VideosConfig{
		Limits:         compat.ServiceLimits{Storage: quota, Usage: meter},
		TrustedProxies: a.cfg.HTTP.TrustedProxies,
	}).Routes(a)
	a.Every("videos-uploads-expiry", videosExpireEvery, tus.Expire)
	// A resumable upload whose finalisation died is taken up again once
	// its lease lapsed (Expire takes those at start whose row never came).
	a.Every("videos-uploads-finish", tus.FinishEvery(), tus.Finish)
	return a.document("videos")
}

// initTranscode runs the videos service's workers without its API: a
// process of the transcode target. Where the videos module runs, it works
// the jobs itself.
func initTranscode(ctx context.Context, a *App) error {
	if a.cfg.Videos.TranscodeWorkers == 0 {
		return errors.New("REEL_TRANSCODE_WORKERS=0 on the transcode target: it would work no jobs")
	}
	if a.present["videos"] {
		return nil
	}
	_, err := a.videosService(ctx, false)
	return err
}

// videosService builds the videos service of this process, on its
// database (with River's tables) and blob store. serve says that it
// serves the API, uploads and media, which need the usage service; a
// transcode process only works jobs. It works them unless it serves and
// REEL_TRANSCODE_WORKERS=0.
func (a *App) videosService(ctx context.Context, serve bool) (*videos.Service, error) {
	sc := schemas["videos"]
	db, err := a.Database(ctx, "videos", sc.migrations, sc.table)
	if err != nil {
		return nil, err
	}
	if err := videos.MigrateQueue(ctx, db); err != nil {
		return nil, fmt.Errorf("videos database: %w", err)
	}
	events, err := a.Outbox(ctx, "videos", db)
	if err != nil {
		return nil, err
	}
	blobs, err := blob.Open(ctx, a.cfg.Videos.BlobURL, filepath.Join(a.cfg.DataDir, "blobs"), blob.WithEnv(os.Getenv))
	if err != nil {
		return nil, fmt.Errorf("videos blob store: %w", err)
	}
	a.Ready("blobs:videos", blobs.Ping)
	spool := filepath.Join(a.cfg.DataDir, "uploads", "spool")
	prober := media.NewProber(0)
	prober.TempDir = spool // posters beside the uploads, on the data volume
	if !prober.Available() {
		a.log.Warn("ffmpeg/ffprobe not found on PATH: MP4, QuickTime, WebM and Matroska uploads are still read in Go; other files are accepted when their bytes look like a video, without duration or size; no video gets a poster (install ffmpeg)")
	}
	quota, err := a.storageQuota("videos")
	if err != nil {
		return nil, err
	}
	// The check asks the storage service for its ledger, and the usage
	// service (when this process can reach it) for its reservations; the
	// maintenance job commits the upload volume ready videos still owe.
	deps := videos.Deps{Blobs: blobs, Prober: prober, Quota: quota, Ledger: quota}
	meter, meterErr := a.usageMeter("videos")
	if meterErr == nil {
		deps.UploadHolds, deps.Limit = meter, meter
	}
	// Transcodes and storyboards run ffmpeg at the lowest priority, as
	// posters do: on the cores the requests leave.
	if a.cfg.Videos.Streaming {
		if tools, err := media.New(media.Config{Runner: media.ExecRunner{Lower: media.Background}}); err == nil {
			deps.Media = tools
		} else {
			a.log.Warn("no adaptive streaming: ffmpeg/ffprobe not found on PATH (install ffmpeg)")
		}
	}
	if serve {
		if meterErr != nil {
			return nil, meterErr
		}
		// Before this module's own background tasks, so the meter stops
		// (and makes its last flush) after them.
		if deps.Egress, err = a.egressMeter("videos"); err != nil {
			return nil, err
		}
	}
	var workers *videos.WorkerConfig
	if n := a.cfg.Videos.TranscodeWorkers; n > 0 {
		workers = &videos.WorkerConfig{Transcode: n, Heartbeat: a.cfg.Videos.JobHeartbeat}
	}
	svc, err := videos.New(ctx, db, events, deps, videos.Config{
		MaxUploadSize:  a.cfg.Videos.MaxUploadSize,
		TrashRetention: a.cfg.Videos.TrashRetention,
		PlaybackTTL:    a.cfg.Videos.PlaybackTTL,
		SigningKey:     a.cfg.Videos.SigningKey,
		SpoolDir:       spool,
		ReserveLease:   a.cfg.Videos.ReserveLease,
		Workers:        workers,
		CheckEvery:     a.cfg.Videos.CheckEvery,
	}, a.log.With("service", "videos"))
	if err != nil {
		return nil, err
	}
	if err := registerJobMetrics(a.prom, svc, db); err != nil {
		return nil, err
	}
	if workers != nil {
		a.Background("videos-jobs", svc.RunJobs)
	}
	a.Every("videos-spool-sweep", videosSpoolEvery, svc.SweepSpool)
	// Holds the spool's lock until shutdown (videos.Service.Close).
	a.Background("videos-spool-lock", func(ctx context.Context) error {
		<-ctx.Done()
		return svc.Close()
	})
	return svc, nil
}

// jobsCollector counts the videos database's jobs by kind and state at
// each scrape (one GROUP BY over River's table, every replica's jobs).
type jobsCollector struct {
	db   *sqldb.DB
	desc *prometheus.Desc
}

func (c jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := queue.Counts(ctx, c.db)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n.N), n.Kind, string(n.State))
	}
}

// checkCollector exposes the last periodic check this process ran: its
// findings by kind, when it ended and how long it took. Nothing before the
// first one ends; a process whose replica never runs the job shows none.
type checkCollector struct{ stats *videos.CheckStats }

var (
	checkFindingsDesc = prometheus.NewDesc("reel_check_findings",
		"Differences the last consistency check found (reel check), by kind; the log has each one.", []string{"kind"}, nil)
	checkLastDesc = prometheus.NewDesc("reel_check_last_run_timestamp_seconds",
		"When the last consistency check ended (Unix time).", nil, nil)
	checkDurationDesc = prometheus.NewDesc("reel_check_duration_seconds",
		"How long the last consistency check took.", nil, nil)
)

func (c checkCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- checkFindingsDesc
	ch <- checkLastDesc
	ch <- checkDurationDesc
}

func (c checkCollector) Collect(ch chan<- prometheus.Metric) {
	rep := c.stats.Last()
	if rep == nil {
		return
	}
	for _, kind := range videos.FindingKinds {
		ch <- prometheus.MustNewConstMetric(checkFindingsDesc, prometheus.GaugeValue, float64(rep.Count(kind)), kind)
	}
	ch <- prometheus.MustNewConstMetric(checkLastDesc, prometheus.GaugeValue, float64(rep.Finished.UnixMilli())/1000)
	ch <- prometheus.MustNewConstMetric(checkDurationDesc, prometheus.GaugeValue, rep.Finished.Sub(rep.Started).Seconds())
}

// registerJobMetrics exposes the job queue (reel_jobs), what this
// process's poster jobs did and its last periodic check.
func registerJobMetrics(reg prometheus.Registerer, svc *videos.Service, db *sqldb.DB) error {
	jobs := jobsCollector{
		db: db,
		desc: prometheus.NewDesc("reel_jobs", "Jobs of the videos service in the queue (all replicas), by kind and state; finished ones until River deletes them a day later.",
			[]string{"kind", "state"}, nil),
	}
	if err := reg.Register(jobs); err != nil {
		return fmt.Errorf("register job metrics: %w", err)
	}
	c := svc.PosterCounts()
	for outcome, v := range map[string]*atomic.Int64{"cut": &c.Cut, "none": &c.None, "failed": &c.Failed, "dropped": &c.Dropped} {
		f := prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "reel_video_posters_total",
			Help:        "Poster jobs this process ran, by outcome: cut; none (nothing to cut, no room, every attempt failed); failed (an attempt that is tried again); dropped (the video went to the trash meanwhile).",
			ConstLabels: prometheus.Labels{"outcome": outcome},
		}, func() float64 { return float64(v.Load()) })
		if err := reg.Register(f); err != nil {
			return fmt.Errorf("register poster metrics: %w", err)
		}
	}
	if err := reg.Register(checkCollector{svc.CheckStats()}); err != nil {
		return fmt.Errorf("register check metrics: %w", err)
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
