// Package videos is the videos service: streaming and resumable uploads
// admitted against the storage quota and the daily upload limit, probing
// and posters, feeds, trash with restore and a purge that survives crashes,
// signed playback URLs whose bytes are served with range support and
// counted as the viewer's egress, and the jobs that do the work nobody
// waits for (posters, maintenance) on a River queue in its database.
//
// The service calls the storage and usage services through the small
// interfaces it defines here (Quota, UploadLimit, Egress); the app passes
// the in-process services or their HTTP clients. Errors those return reach
// the client unchanged.
package videos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/reel-video/reel/internal/media"
	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/queue"
	"github.com/reel-video/reel/internal/platform/reserve"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Errors of the videos service.
var (
	ErrVideoNotFound   = errs.New(errs.NotFound, "video_not_found", "no such video")
	ErrUploadNotFound  = errs.New(errs.NotFound, "upload_not_found", "no such upload")
	ErrValidation      = errs.New(errs.Validation, "validation_failed", "some fields are not valid")
	ErrNotVideo        = errs.New(errs.Unsupported, "unsupported_media", "the file is not a video reel accepts")
	ErrUploadTooLarge  = errs.New(errs.TooLarge, "upload_too_large", "the upload is larger than the largest upload allowed")
	ErrProcessing      = errs.New(errs.Conflict, "video_processing", "the video is still being processed")
	ErrRestoreBusy     = errs.New(errs.Conflict, "restore_in_progress", "the video is being restored or purged; try again shortly")
	ErrIncomplete      = errs.New(errs.Invalid, "upload_incomplete", "the upload ended before all of its declared bytes arrived")
	ErrMalformedUpload = errs.New(errs.Invalid, "malformed_upload", "the upload is not valid multipart/form-data")
	ErrBadSignature    = errs.New(errs.Forbidden, "invalid_signature", "the media URL is not valid")
	ErrURLExpired      = errs.New(errs.Forbidden, "url_expired", "the media URL has expired; ask for a new playback URL")
	ErrURLRevoked      = errs.New(errs.Forbidden, "url_revoked", "the media URL was revoked: its viewer's account was disabled or logged out")
	ErrEgressLimit     = errs.New(errs.RateLimited, "daily_limit_reached", "your daily viewing volume is used up; it resets at 00:00 UTC")
	ErrFileNotFound    = errs.New(errs.NotFound, "file_not_found", "the video has no such file")
)

// Video statuses.
const (
	StatusProcessing = "processing"
	StatusReady      = "ready"
	StatusFailed     = "failed"
)

// Video is a video as clients see it.
type Video struct {
	ID              string     `json:"id"`
	OwnerID         string     `json:"owner_id"`
	Title           string     `json:"title"`
	Description     string     `json:"description"`
	Status          string     `json:"status"`
	SizeBytes       int64      `json:"size_bytes"`
	ContentType     string     `json:"content_type"`
	DurationSeconds float64    `json:"duration_seconds"`
	Width           int        `json:"width"`
	Height          int        `json:"height"`
	CreatedAt       time.Time  `json:"created_at"`
	DeletedAt       *time.Time `json:"deleted_at"`
	// Filename is the name the file was uploaded under, for the original
	// system's clients; it is not part of the v1 video document.
	Filename string `json:"-"`
	// Streaming is where the video's adaptive streaming stands.
	Streaming Streaming `json:"streaming"`
	// renditions (done, lowest first) and storyboard are what Sign grants
	// besides the video and its poster.
	renditions []rendition
	storyboard bool
}

// TrashedVideo is a video in the trash, with the time it will be purged.
type TrashedVideo struct {
	Video
	PurgeAt time.Time `json:"purge_at"`
}

// Quota is the storage quota, as the videos service uses it (implemented
// by the storage service in process or its HTTP client). Errors are the
// provider's classified errors (quota_exceeded 413, unavailable 503...),
// which reach the client unchanged.
type Quota interface {
	// Reserve holds bytes for ttl, or refuses when they do not fit. A
	// failure that returns a hold with an id may have made it all the
	// same (reserve.Unanswered): the caller releases it.
	Reserve(ctx context.Context, userID string, bytes int64, ttl time.Duration) (reserve.Hold, error)
	// Renew pushes a held reservation's expiry to ttl from now; one no
	// longer held is a conflict (reservation_settled).
	Renew(ctx context.Context, id string, ttl time.Duration) error
	// Commit turns a reservation into actual bytes stored under object
	// (idempotent).
	Commit(ctx context.Context, id string, actual int64, object string) error
	// Release gives a reservation back (idempotent; a settled or unknown
	// reservation is not an error).
	Release(ctx context.Context, id string) error
	// Free stops counting an object's bytes and tells how many (idempotent:
	// a freed object frees 0).
	Free(ctx context.Context, userID, object string) (freed int64, err error)
}

// UploadLimit is the daily upload volume (implemented by the usage service
// or its client). Refusals are daily_limit_reached (429 with Retry-After).
// ReserveUpload fails as Quota.Reserve does.
type UploadLimit interface {
	ReserveUpload(ctx context.Context, userID string, bytes int64, ttl time.Duration) (reserve.Hold, error)
	CommitUpload(ctx context.Context, id string, actual int64) error
	ReleaseUpload(ctx context.Context, id string) error
	RenewUpload(ctx context.Context, id string, ttl time.Duration) error
}

// Egress is the daily viewing volume (implemented by the usage service's
// egress meter).
type Egress interface {
	// Allowance is what the user may still receive today, -1 for no limit.
	Allowance(ctx context.Context, userID string) (int64, error)
	// Add counts bytes delivered to the user; it must not block.
	Add(userID string, n int64)
}

// Prober validates and describes uploaded files (media.Prober).
type Prober interface {
	Probe(ctx context.Context, path string) (media.Info, error)
	Poster(ctx context.Context, path string, info media.Info) (jpegPath string, err error)
}

// Deps are the service's collaborators. Limit and Egress may be nil in a
// process that only works jobs (the transcode target): it serves neither
// uploads nor media.
type Deps struct {
	Blobs  blob.Store
	Prober Prober
	Quota  Quota
	Limit  UploadLimit
	Egress Egress
	// Media makes the renditions and storyboards of adaptive streaming
	// (Transcode, Storyboard); nil in a process that runs no such jobs.
	Media *media.Tools
	// Ledger and UploadHolds are the storage and usage services as the
	// consistency check asks them (check.go); the check leaves out what
	// a nil one would tell.
	Ledger      Ledger
	UploadHolds Holds
}

// Config configures the service.
type Config struct {
	// MaxUploadSize bounds any single upload, in bytes.
	MaxUploadSize int64
	// TrashRetention is how long a deleted video can be restored.
	TrashRetention time.Duration
	// PlaybackTTL is the lifetime of signed media URLs.
	PlaybackTTL time.Duration
	// SigningKey signs media URLs; empty means the key kept in the
	// database (generated by the first replica).
	SigningKey string
	// SpoolDir holds uploads while they arrive (default: the OS temp dir).
	SpoolDir string
	// ReserveTTL is how long an upload's reservations are held. An upload
	// still running when they lapse is admitted again at commit if there is
	// room (default 6h).
	ReserveTTL time.Duration
	// ReserveLease is how long the reservations of work in this process
	// (a multipart upload, a poster, a rendition) outlive their last
	// renewal: they are renewed every quarter of it while the work goes
	// on, so those of a process that died come back a lease later, not
	// after ReserveTTL (default 2 min). ReserveTTL stays the bound on
	// how long work may hold them. A resumable upload's reservations
	// belong to the upload, which outlives this process, and are not
	// leased.
	ReserveLease time.Duration
	// UploadExpiry is how long a resumable upload may stay idle before it
	// is expired (default DefaultUploadExpiry).
	UploadExpiry time.Duration
	// FinaliseTimeout bounds probing and storing the bytes once they have
	// all arrived (default 30 min).
	FinaliseTimeout time.Duration
	// Workers makes this process work the service's jobs (RunJobs); nil
	// makes it only insert and manage them.
	Workers *WorkerConfig
	// FairStep replaces each job kind's fair queueing step (jobs.go:
	// planFair); negative turns fair queueing off.
	FairStep time.Duration
	// CheckEvery is how often the periodic check job runs (check.go);
	// 0 runs none.
	CheckEvery time.Duration
	// noPeriodic leaves the periodic jobs out, for tests that run the
	// maintenance themselves.
	noPeriodic bool
	// noStreamingJobs enqueues no streaming jobs on upload or restore,
	// for tests that check a video's own bytes and charges.
	noStreamingJobs bool
}

// serviceName is the service field of this service's activity events.
const serviceName = "videos"

// Service implements the videos service's logic.
type Service struct {
	db     *sqldb.DB
	store  *store
	events *outbox.Outbox
	blobs  blob.Store
	prober Prober
	quota  Quota
	limit  UploadLimit
	egress Egress
	tools  *media.Tools
	// ledger and uploadHolds are for the check (check.go); checkStats
	// keeps the last periodic check's report.
	ledger      Ledger
	uploadHolds Holds
	checkStats  CheckStats
	cfg         Config
	signer      *signer
	media       *mediaCache
	records     *idCache[record]
	feed        *firstPages
	log         *slog.Logger
	now         func() time.Time
	// retrying counts the clean-ups retrying in the background
	// (maintenance.go).
	retrying atomic.Int64
	// jobs is the River client (jobs.go); working says it works jobs
	// here, and stopping that RunJobs is cancelling the running ones.
	jobs         *queue.Client
	working      bool
	stopping     atomic.Bool
	stopGrace    time.Duration
	posterCounts PosterCounts
	// spoolSpace reports the free and total bytes of the spool's file
	// system (diskSpace; tests replace it).
	spoolSpace func(dir string) (free, total uint64, err error)
	// spoolLock is the spool directory, open and locked for the
	// process's life (spool.go).
	spoolLock *os.File
}

// New builds the service on db (migrated with Migrations).
func New(ctx context.Context, db *sqldb.DB, events *outbox.Outbox, deps Deps, cfg Config, log *slog.Logger) (*Service, error) {
	if deps.Blobs == nil || deps.Prober == nil || deps.Quota == nil {
		return nil, errors.New("videos: the blob store, the prober and the quota must be set")
	}
	if cfg.MaxUploadSize <= 0 {
		return nil, errors.New("videos: MaxUploadSize must be positive")
	}
	if cfg.PlaybackTTL <= 0 {
		cfg.PlaybackTTL = 4 * time.Hour
	}
	if cfg.TrashRetention <= 0 {
		cfg.TrashRetention = 30 * 24 * time.Hour
	}
	if cfg.ReserveTTL <= 0 {
		cfg.ReserveTTL = 6 * time.Hour
	}
	if cfg.ReserveLease <= 0 {
		cfg.ReserveLease = DefaultReserveLease
	}
	if cfg.FinaliseTimeout <= 0 {
		cfg.FinaliseTimeout = 30 * time.Minute
	}
	if cfg.SpoolDir == "" {
		cfg.SpoolDir = os.TempDir()
	}
	if err := os.MkdirAll(cfg.SpoolDir, 0o700); err != nil {
		return nil, fmt.Errorf("videos: spool directory: %w", err)
	}
	st, err := newStore(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("videos: %w", err)
	}
	s := &Service{
		db: db, store: st, events: events,
		blobs: deps.Blobs, prober: deps.Prober, quota: deps.Quota, limit: deps.Limit, egress: deps.Egress, tools: deps.Media,
		ledger: deps.Ledger, uploadHolds: deps.UploadHolds,
		cfg: cfg, log: log, now: time.Now,
		media:      newMediaCache(mediaCacheSize, mediaCacheTTL),
		records:    newIDCache[record](recordsSize, recordTTL),
		feed:       newFirstPages(),
		spoolSpace: diskSpace,
		stopGrace:  stopGrace,
	}
	if err := s.newQueue(cfg.Workers); err != nil {
		return nil, fmt.Errorf("videos: %w", err)
	}
	key := []byte(cfg.SigningKey)
	if len(key) == 0 {
		var err error
		if key, err = s.store.mediaKey(ctx, s.now()); err != nil {
			return nil, fmt.Errorf("videos: %w", err)
		}
	}
	s.signer = &signer{key: key}
	s.recoverSpool()
	s.removeStaleSpool()
	return s, nil
}

// mustServe panics unless the service can serve uploads and media: a
// process built to work jobs only (no Limit, no Egress) must not register
// the routes.
func (s *Service) mustServe() {
	if s.limit == nil || s.egress == nil {
		panic("videos: serving uploads and media needs Deps.Limit and Deps.Egress") // a programming error
	}
}

// SetClock replaces the clock, for tests.
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// Config returns the service's configuration, defaults filled in.
func (s *Service) Config() Config { return s.cfg }

func (s *Service) event(ctx context.Context, action, outcome, desc string) outbox.Event {
	return outbox.NewEvent(ctx, serviceName, action, outcome, desc)
}

// detached is a context for clean-up that must happen even when the
// request that needed it is gone.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
}

func quote(s string) string { return "\"" + s + "\"" }
