// Package videos is the videos service: streaming and resumable uploads
// admitted against the storage quota and the daily upload limit, probing
// and posters, feeds, trash with restore and a purge that survives crashes,
// and signed playback URLs whose bytes are served with range support and
// counted as the viewer's egress.
//
// The service calls the storage and usage services through the small
// interfaces it defines here (Quota, UploadLimit, Egress); the app passes
// the in-process services or their HTTP clients. Errors those return reach
// the client unchanged.
package videos

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/platform/probe"
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
	ErrEgressLimit     = errs.New(errs.RateLimited, "daily_limit_reached", "your daily viewing volume is used up; it resets at 00:00 UTC")
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
	// HasPoster tells whether a poster image exists or is being cut (it
	// is cut after the upload has been answered).
	HasPoster bool `json:"-"`
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
	// Reserve holds bytes for ttl, or refuses when they do not fit.
	Reserve(ctx context.Context, userID string, bytes int64, ttl time.Duration) (reserve.Hold, error)
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
type UploadLimit interface {
	ReserveUpload(ctx context.Context, userID string, bytes int64, ttl time.Duration) (reserve.Hold, error)
	CommitUpload(ctx context.Context, id string, actual int64) error
	ReleaseUpload(ctx context.Context, id string) error
}

// Egress is the daily viewing volume (implemented by the usage service's
// egress meter).
type Egress interface {
	// Allowance is what the user may still receive today, -1 for no limit.
	Allowance(ctx context.Context, userID string) (int64, error)
	// Add counts bytes delivered to the user; it must not block.
	Add(userID string, n int64)
}

// Prober validates and describes uploaded files (probe.Prober).
type Prober interface {
	Probe(ctx context.Context, path string) (probe.Info, error)
	Poster(ctx context.Context, path string, info probe.Info) (jpegPath string, err error)
}

// Deps are the service's collaborators.
type Deps struct {
	Blobs  blob.Store
	Prober Prober
	Quota  Quota
	Limit  UploadLimit
	Egress Egress
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
	// UploadExpiry is how long a resumable upload may stay idle before it
	// is expired (default DefaultUploadExpiry).
	UploadExpiry time.Duration
	// FinaliseTimeout bounds probing and storing the bytes once they have
	// all arrived (default 30 min).
	FinaliseTimeout time.Duration
}

// staleAfter is how long a step (finalising an upload, a restore) may take
// before the maintenance job treats it as abandoned by a dead process.
const staleAfter = 2 * time.Hour

// restoreStale is how long a restore may sit between its claim and its end.
const restoreStale = 10 * time.Minute

// maintenanceBatch bounds the rows one maintenance pass handles.
const maintenanceBatch = 100

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
	cfg    Config
	signer *signer
	media  *mediaCache
	log    *slog.Logger
	now    func() time.Time
	// retrying counts the clean-ups retrying in the background (cleanup.go).
	retrying atomic.Int64
	// posterKick wakes the poster worker when an upload here has made a
	// poster due (posters.go).
	posterKick   chan struct{}
	posterCounts PosterCounts
	// spoolSpace reports the free and total bytes of the spool's file
	// system (diskSpace; tests replace it).
	spoolSpace func(dir string) (free, total uint64, err error)
}

// New builds the service on db (migrated with Migrations).
func New(ctx context.Context, db *sqldb.DB, events *outbox.Outbox, deps Deps, cfg Config, log *slog.Logger) (*Service, error) {
	if deps.Blobs == nil || deps.Prober == nil || deps.Quota == nil || deps.Limit == nil || deps.Egress == nil {
		return nil, errors.New("videos: every dependency must be set")
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
		blobs: deps.Blobs, prober: deps.Prober, quota: deps.Quota, limit: deps.Limit, egress: deps.Egress,
		cfg: cfg, log: log, now: time.Now,
		media:      newMediaCache(mediaCacheSize, mediaCacheTTL),
		posterKick: make(chan struct{}, 1),
		spoolSpace: diskSpace,
	}
	key := []byte(cfg.SigningKey)
	if len(key) == 0 {
		var err error
		if key, err = s.store.mediaKey(ctx, s.now()); err != nil {
			return nil, fmt.Errorf("videos: %w", err)
		}
	}
	s.signer = &signer{key: key}
	s.removeStaleSpool()
	return s, nil
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

// ---------------------------------------------------------------------
// Admission and finalisation (shared by multipart and tus uploads)

// Admission is what an upload holds once admitted: a storage reservation
// and a daily-upload reservation of its declared size.
type Admission struct {
	OwnerID string
	Bytes   int64
	quotaID string
	limitID string
	// settled records which reservations were committed, so a clean-up
	// releases only the others.
	quotaCommitted, limitCommitted bool
}

// ResumeAdmission rebuilds the admission of a resumable upload from the
// reservation ids it stored.
func ResumeAdmission(ownerID string, bytes int64, quotaID, limitID string) *Admission {
	return &Admission{OwnerID: ownerID, Bytes: bytes, quotaID: quotaID, limitID: limitID}
}

// Reservations returns the ids of the admission's reservations, to be
// stored by a resumable upload.
func (a *Admission) Reservations() (quotaID, limitID string) { return a.quotaID, a.limitID }

// Admit reserves bytes against the owner's storage quota and daily upload
// limit before any byte is accepted. Both reservations are atomic in their
// services, so concurrent uploads cannot overshoot. ttl <= 0 means the
// configured ReserveTTL.
func (s *Service) Admit(ctx context.Context, ownerID string, bytes int64, ttl time.Duration) (*Admission, error) {
	if bytes < 0 {
		return nil, ErrValidation.WithMsg("the upload's length must not be negative")
	}
	if bytes > s.cfg.MaxUploadSize {
		return nil, ErrUploadTooLarge.WithMsg(fmt.Sprintf("the upload is %d bytes; the largest allowed is %d bytes", bytes, s.cfg.MaxUploadSize))
	}
	if ttl <= 0 {
		ttl = s.cfg.ReserveTTL
	}
	q, err := s.quota.Reserve(ctx, ownerID, bytes, ttl)
	if err != nil {
		return nil, fmt.Errorf("admit upload: storage quota: %w", err)
	}
	l, err := s.limit.ReserveUpload(ctx, ownerID, bytes, ttl)
	if err != nil {
		// Give the storage reservation back; the daily one was not made.
		cctx, cancel := detached(ctx)
		defer cancel()
		s.release(cctx, "release storage reservation", q.ID, s.quota.Release)
		return nil, fmt.Errorf("admit upload: daily upload limit: %w", err)
	}
	return &Admission{OwnerID: ownerID, Bytes: bytes, quotaID: q.ID, limitID: l.ID}, nil
}

// Release gives back what the admission still holds. A release that
// fails (the service is down) is retried in the background for a while
// (cleanUp); a reservation nobody releases lapses when its TTL ends.
func (s *Service) Release(ctx context.Context, a *Admission) {
	if a == nil {
		return
	}
	ctx, cancel := detached(ctx)
	defer cancel()
	if !a.quotaCommitted {
		s.release(ctx, "release storage reservation", a.quotaID, s.quota.Release)
	}
	if !a.limitCommitted {
		s.release(ctx, "release upload reservation", a.limitID, s.limit.ReleaseUpload)
	}
}

// release gives reservation id back with fn, now or else in the
// background (cleanUp).
func (s *Service) release(ctx context.Context, what, id string, fn func(context.Context, string) error) {
	s.cleanUp(ctx, what, []any{"reservation", id}, func(ctx context.Context) error { return fn(ctx, id) })
}

// Meta is what an uploader says about a video.
type Meta struct {
	Title, Description, Filename string
}

// Title and description limits, in characters.
const (
	MaxTitle       = 200
	MaxDescription = 5000
	maxFilename    = 255
)

// Validate checks and normalises the metadata (titles are trimmed).
func (m Meta) Validate() (Meta, error) {
	fields := map[string]string{}
	m.Title = strings.TrimSpace(m.Title)
	if msg := checkText(m.Title, 1, MaxTitle); msg != "" {
		fields["title"] = msg
	}
	m.Description = strings.TrimSpace(m.Description)
	if msg := checkText(m.Description, 0, MaxDescription); msg != "" {
		fields["description"] = msg
	}
	m.Filename = cleanFilename(m.Filename)
	if len(fields) > 0 {
		return m, ErrValidation.WithFields(fields)
	}
	return m, nil
}

func checkText(s string, minLen, maxLen int) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	n := utf8.RuneCountInString(s)
	if n < minLen {
		return "is required"
	}
	if n > maxLen {
		return fmt.Sprintf("must be at most %d characters", maxLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' {
			return "must not contain control characters"
		}
	}
	return ""
}

// cleanFilename keeps the base name a browser sent, without directories or
// control characters; it is only ever displayed.
func cleanFilename(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, name)
	for len(name) > maxFilename {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return strings.TrimSpace(name)
}

// Spool creates a temporary file for an arriving upload; the caller
// removes it.
func (s *Service) Spool() (*os.File, error) {
	f, err := os.CreateTemp(s.cfg.SpoolDir, "upload-*")
	if err != nil {
		return nil, fmt.Errorf("spool upload: %w", err)
	}
	return f, nil
}

// removeStaleSpool deletes spool files, posters and poster sources
// (upload-*) left behind a day ago or more: by a crashed process, or a
// poster source whose video went to the trash before its poster was cut
// (the poster worker reads the stored video when its source is gone).
func (s *Service) removeStaleSpool() {
	entries, err := os.ReadDir(s.cfg.SpoolDir)
	if err != nil {
		return
	}
	before := s.now().Add(-24 * time.Hour)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "upload-") && !strings.HasPrefix(e.Name(), probe.PosterPrefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(before) {
			_ = os.Remove(filepath.Join(s.cfg.SpoolDir, e.Name()))
		}
	}
}

// Ingest is an upload whose bytes have all arrived in a local file.
type Ingest struct {
	Path string
	Size int64
	Meta Meta
	// Via names the upload route, for the activity log ("multipart", "tus").
	Via string
}

// extensions maps a container's media type to the file name the video is
// stored and served under.
var extensions = map[string]string{
	"video/mp4": ".mp4", "video/quicktime": ".mov", "video/3gpp": ".3gp", "video/3gpp2": ".3g2",
	"video/webm": ".webm", "video/x-matroska": ".mkv", "video/x-msvideo": ".avi", "video/mp2t": ".ts", "video/ogg": ".ogv",
}

// VideoFile is the file name a video is served under (video.mp4, video.webm...).
func VideoFile(contentType string) string {
	if ext, ok := extensions[contentType]; ok {
		return "video" + ext
	}
	return "video.bin"
}

// PosterFile is the file name of a video's poster.
const PosterFile = "poster.jpg"

func blobKey(id, file string) string { return "videos/" + id + "/" + file }

// Finalise turns an admitted upload whose bytes are in in.Path into a
// ready video: it probes the file (ErrNotVideo when it is not a video),
// stores it in the blob store, commits the real size to the quota and the
// daily upload volume, and records the video, with its poster due and its
// UPLOAD_VIDEO event, in one transaction. The poster worker cuts the
// poster afterwards (posters.go). On any failure it gives back
// everything (reservations, blobs, charged bytes) and returns the error.
// The file at in.Path may be moved into the blob store (a disk store on
// the same filesystem takes it by a rename); the caller removes whatever
// is left at in.Path, success or failure.
//
// Finalise runs to the end even if ctx is cancelled: all the bytes have
// arrived, so the work is worth finishing.
func (s *Service) Finalise(ctx context.Context, adm *Admission, in Ingest) (Video, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.FinaliseTimeout)
	defer cancel()
	v, err := s.finalise(ctx, adm, in)
	if err != nil {
		s.Release(ctx, adm)
		outcome := outbox.Failure
		if k := errs.KindOf(err); k == errs.TooLarge || k == errs.RateLimited {
			outcome = outbox.Denied
		}
		desc := "upload failed"
		if e, ok := errs.As(err); ok {
			desc = "upload failed: " + e.Code
		}
		s.events.RecordOrLog(ctx, s.event(ctx, "UPLOAD_VIDEO", outcome, desc).ForUser(adm.OwnerID).
			With("size_bytes", in.Size).With("via", in.Via))
		return Video{}, err
	}
	return v, nil
}

func (s *Service) finalise(ctx context.Context, adm *Admission, in Ingest) (Video, error) {
	meta, err := in.Meta.Validate()
	if err != nil {
		return Video{}, err
	}
	if in.Size > adm.Bytes {
		// Cannot happen through the routes, which stop reading at the
		// declared length; a bug must not store more than was admitted.
		return Video{}, fmt.Errorf("finalise upload: %d bytes arrived, %d were admitted", in.Size, adm.Bytes)
	}
	info, err := s.prober.Probe(ctx, in.Path)
	if errors.Is(err, probe.ErrNotVideo) {
		return Video{}, notVideo(err)
	}
	if err != nil {
		return Video{}, fmt.Errorf("finalise upload: probe: %w", err)
	}

	now := s.now()
	id := uuid.Must(uuid.NewV7()).String()
	rec := record{
		Video: Video{
			ID: id, OwnerID: adm.OwnerID, Title: meta.Title, Description: meta.Description, Filename: meta.Filename,
			Status: StatusProcessing, SizeBytes: in.Size, ContentType: info.ContentType,
			DurationSeconds: info.DurationSeconds, Width: info.Width, Height: info.Height, CreatedAt: now.UTC().Truncate(time.Microsecond),
		},
		VideoCodec: info.VideoCodec, AudioCodec: info.AudioCodec,
		VideoKey:   blobKey(id, VideoFile(info.ContentType)),
		QuotaState: quotaCharging, QuotaAt: micros(now), UpdatedAt: micros(now),
	}
	// The row comes first, in state processing: if this process dies
	// from here on, the maintenance job finds the row and undoes the rest.
	if err := s.store.insertVideo(ctx, s.db.W, rec); err != nil {
		return Video{}, fmt.Errorf("finalise upload: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			s.undoFinalise(ctx, rec)
		}
	}()

	// The poster is cut after the answer (posters.go), from a second name
	// of the spooled file: putFile may move the file into the blob store
	// or the caller remove it. Without that name the poster worker reads
	// the stored video instead.
	link := s.posterSource(id)
	s.keepPosterSource(in.Path, in.Size, link)
	defer func() {
		if !ok {
			_ = os.Remove(link)
		}
	}()

	if err := s.putFile(ctx, rec.VideoKey, in.Path, in.Size, info.ContentType); err != nil {
		return Video{}, fmt.Errorf("finalise upload: store video: %w", err)
	}
	// Committing the real size gives back what the declared length (with
	// its multipart overhead) held beyond it, before the poster asks.
	if err := s.quota.Commit(ctx, adm.quotaID, in.Size, rec.VideoKey); err != nil {
		return Video{}, fmt.Errorf("finalise upload: commit storage: %w", err)
	}
	adm.quotaCommitted = true
	rec.Status = StatusReady
	rec.QuotaState = quotaCharged
	rec.PosterDue = 1
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		done, err := s.store.markReady(ctx, tx, rec, micros(s.now()))
		if err != nil {
			return err
		}
		if !done {
			return errors.New("the processing row vanished")
		}
		e := s.event(ctx, "UPLOAD_VIDEO", outbox.Success, "uploaded video "+quote(rec.Title)).
			ForUser(rec.OwnerID).On(rec.ID).With("size_bytes", rec.SizeBytes).With("content_type", rec.ContentType).
			With("duration_seconds", rec.DurationSeconds).With("via", in.Via)
		return s.events.Add(ctx, tx, e)
	})
	if err != nil {
		return Video{}, fmt.Errorf("finalise upload: %w", err)
	}
	ok = true
	s.announcePoster()
	// The day's volume is committed last, once the video stands: usage
	// cannot give volume back, so a failure before this point must leave
	// it uncounted (Finalise releases the reservation). A commit that
	// fails now (usage unreachable) does not fail an upload that
	// succeeded: it is idempotent by reservation, so it is retried in the
	// background; the reservation holds the bytes meanwhile.
	adm.limitCommitted = true
	id, size := adm.limitID, in.Size
	s.cleanUp(ctx, "commit upload volume", []any{"video", rec.ID, "reservation", id}, func(ctx context.Context) error {
		return s.limit.CommitUpload(ctx, id, size)
	})
	return rec.public(), nil
}

// storePoster stores a poster and charges it to the owner's quota like
// any stored byte: reserved, then committed, so that a tight quota is
// never overshot. When there is no room left for it, the video simply
// goes without a poster.
func (s *Service) storePoster(ctx context.Context, rec *record, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	size, key := fi.Size(), blobKey(rec.ID, PosterFile)
	res, err := s.quota.Reserve(ctx, rec.OwnerID, size, s.cfg.ReserveTTL)
	if errs.KindOf(err) == errs.TooLarge {
		s.log.Info("no room in the quota for a poster; the video has none", "video", rec.ID, "bytes", size)
		return nil
	}
	if err != nil {
		return err
	}
	release := func() {
		cctx, cancel := detached(ctx)
		defer cancel()
		if err := s.quota.Release(cctx, res.ID); err != nil {
			s.log.Warn("release poster reservation", "video", rec.ID, "err", err)
		}
	}
	if err := s.putFile(ctx, key, path, size, "image/jpeg"); err != nil {
		release()
		return err
	}
	if err := s.quota.Commit(ctx, res.ID, size, key); err != nil {
		release()
		return err
	}
	rec.PosterKey, rec.PosterBytes = key, size
	return nil
}

func notVideo(err error) error {
	reason := strings.TrimPrefix(err.Error(), probe.ErrNotVideo.Error()+": ")
	if reason == err.Error() || reason == "" {
		return ErrNotVideo
	}
	return ErrNotVideo.WithMsg("the file is not a video reel accepts: " + reason)
}

// putFile stores a local file in the blob store. A disk store on the same
// filesystem takes the file by a rename (see blob.Importer), so the file
// may be gone afterwards; the caller removes whatever is left.
func (s *Service) putFile(ctx context.Context, key, path string, size int64, contentType string) error {
	_, err := blob.PutFile(ctx, s.blobs, key, path, size, contentType)
	return err
}

// undoFinalise removes what a failed finalisation stored: blobs, charged
// bytes (Free is idempotent, so freeing what was never committed is
// harmless) and the processing row. If it fails half-way (the storage
// service is down) the row stays in processing and the undo is retried in
// the background (cleanUp); should the process stop first, the
// maintenance job finishes it later.
func (s *Service) undoFinalise(ctx context.Context, rec record) {
	ctx, cancel := detached(ctx)
	defer cancel()
	undo := func(ctx context.Context) error {
		if err := s.dropBlobsAndCharges(ctx, rec); err != nil {
			return err
		}
		return s.store.deleteVideo(ctx, s.db.W, rec.ID)
	}
	s.cleanUp(ctx, "undo failed upload", []any{"video", rec.ID}, undo)
}

// dropBlobsAndCharges deletes a video's blobs and stops counting them. The
// poster key is derived, not read from the row, because the poster is
// stored and charged before the row records it.
func (s *Service) dropBlobsAndCharges(ctx context.Context, rec record) error {
	for _, key := range []string{rec.VideoKey, blobKey(rec.ID, PosterFile)} {
		if _, err := s.quota.Free(ctx, rec.OwnerID, key); err != nil {
			return fmt.Errorf("free %s: %w", key, err)
		}
		if err := s.blobs.Delete(ctx, key); err != nil {
			return fmt.Errorf("delete blob %s: %w", key, err)
		}
	}
	return nil
}

func quote(s string) string { return "\"" + s + "\"" }

// ---------------------------------------------------------------------
// Reading

func (r record) visibleTo(c authn.Caller) bool {
	if c.UserID == r.OwnerID || c.IsAdmin() {
		return true
	}
	return r.Status == StatusReady && r.DeletedAt == nil
}

func (r record) public() Video {
	v := r.Video
	v.HasPoster = r.PosterKey != "" || r.PosterDue > 0
	return v
}

// Get returns a video: anyone authenticated sees a ready video that is not
// in the trash; its owner and admins see it in every state.
func (s *Service) Get(ctx context.Context, c authn.Caller, id string) (Video, error) {
	r, err := s.load(ctx, id)
	if err != nil {
		return Video{}, err
	}
	if !r.visibleTo(c) {
		return Video{}, ErrVideoNotFound
	}
	return r.public(), nil
}

func (s *Service) load(ctx context.Context, id string) (record, error) {
	if !validID(id) {
		return record{}, ErrVideoNotFound
	}
	return s.store.video(ctx, s.db.R, id)
}

// validID accepts canonical UUIDs only, so a malformed id is a plain 404
// rather than a database round trip.
func validID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && u.String() == id
}

// owned loads a video the caller may change: its owner's or any, for an
// admin. Others get ErrVideoNotFound, as for a video that does not exist.
func (s *Service) owned(ctx context.Context, c authn.Caller, id string) (record, error) {
	r, err := s.load(ctx, id)
	if err != nil {
		return record{}, err
	}
	if r.OwnerID != c.UserID && !c.IsAdmin() {
		return record{}, ErrVideoNotFound
	}
	return r, nil
}

func videoKey(v Video) page.Cursor { return page.Cursor{T: micros(v.CreatedAt), ID: v.ID} }

func publicAll(rs []record) []Video {
	out := make([]Video, len(rs))
	for i, r := range rs {
		out[i] = r.public()
	}
	return out
}

// Feed lists everyone's ready videos that are not in the trash, newest
// first.
func (s *Service) Feed(ctx context.Context, req page.Request) (page.Page[Video], error) {
	rs, err := s.store.feed(ctx, req)
	if err != nil {
		return page.Page[Video]{}, err
	}
	p := page.Make(publicAll(rs), req.Limit, videoKey)
	s.events.RecordOrLog(ctx, s.event(ctx, "FETCH_VIDEOS", outbox.Success, "listed the feed").With("count", len(p.Items)))
	return p, nil
}

// Mine lists the caller's videos in every state but deleted, newest first.
func (s *Service) Mine(ctx context.Context, c authn.Caller, req page.Request) (page.Page[Video], error) {
	rs, err := s.store.mine(ctx, c.UserID, req)
	if err != nil {
		return page.Page[Video]{}, err
	}
	p := page.Make(publicAll(rs), req.Limit, videoKey)
	s.events.RecordOrLog(ctx, s.event(ctx, "FETCH_VIDEOS", outbox.Success, "listed own videos").With("count", len(p.Items)))
	return p, nil
}

// Numbered is a page of videos by position with the total, for clients
// that page by number (the original system's).
type Numbered struct {
	Items []Video
	Total int
}

// maxPosition bounds how deep a numbered listing may start: a position
// costs the database a scan of every row before it, so a client may not
// ask for the millionth row. Cursor listings (Feed, Mine) have no bound.
const maxPosition = 100_000

// maxNumberedLimit bounds the page size of a numbered listing.
const maxNumberedLimit = 100

// ErrPositionTooFar refuses a numbered listing that starts too deep.
var ErrPositionTooFar = errs.New(errs.Invalid, "position_too_far",
	fmt.Sprintf("a listing by position may start at most at %d; page with the cursor API instead", maxPosition))

// FeedAt lists the ready videos of every user by position, newest first.
func (s *Service) FeedAt(ctx context.Context, offset, limit int) (Numbered, error) {
	return s.readyAt(ctx, "", offset, limit, "listed the feed")
}

// MineAt lists the caller's ready videos by position, newest first.
func (s *Service) MineAt(ctx context.Context, c authn.Caller, offset, limit int) (Numbered, error) {
	return s.readyAt(ctx, c.UserID, offset, limit, "listed own videos")
}

func (s *Service) readyAt(ctx context.Context, owner string, offset, limit int, what string) (Numbered, error) {
	if offset < 0 || offset > maxPosition {
		return Numbered{}, ErrPositionTooFar
	}
	limit = min(max(limit, 1), maxNumberedLimit)
	rs, total, err := s.store.readyAt(ctx, owner, offset, limit)
	if err != nil {
		return Numbered{}, err
	}
	s.events.RecordOrLog(ctx, s.event(ctx, "FETCH_VIDEOS", outbox.Success, what).With("count", len(rs)))
	return Numbered{Items: publicAll(rs), Total: total}, nil
}

// Trash lists the caller's deleted videos, most recently deleted first,
// with the time each will be purged.
func (s *Service) Trash(ctx context.Context, c authn.Caller, req page.Request) (page.Page[TrashedVideo], error) {
	rs, err := s.store.trash(ctx, c.UserID, req)
	if err != nil {
		return page.Page[TrashedVideo]{}, err
	}
	items := make([]TrashedVideo, len(rs))
	for i, r := range rs {
		items[i] = TrashedVideo{Video: r.public(), PurgeAt: r.DeletedAt.Add(s.cfg.TrashRetention)}
	}
	p := page.Make(items, req.Limit, func(t TrashedVideo) page.Cursor {
		return page.Cursor{T: micros(*t.DeletedAt), ID: t.ID}
	})
	s.events.RecordOrLog(ctx, s.event(ctx, "FETCH_VIDEOS", outbox.Success, "listed the trash").With("count", len(p.Items)).With("trash", true))
	return p, nil
}

// ---------------------------------------------------------------------
// Changing

// Patch is a change of a video's metadata; nil fields stay as they are.
type Patch struct {
	Title, Description *string
}

// Update changes a video's title or description (owner or admin).
func (s *Service) Update(ctx context.Context, c authn.Caller, id string, p Patch) (Video, error) {
	r, err := s.owned(ctx, c, id)
	if err != nil {
		return Video{}, err
	}
	if r.DeletedAt != nil {
		return Video{}, ErrVideoNotFound
	}
	m := Meta{Title: r.Title, Description: r.Description}
	if p.Title != nil {
		m.Title = *p.Title
	}
	if p.Description != nil {
		m.Description = *p.Description
	}
	if m, err = m.Validate(); err != nil {
		return Video{}, err
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		done, err := s.store.updateVideo(ctx, tx, id, m.Title, m.Description, micros(s.now()))
		if err != nil {
			return err
		}
		if !done {
			return ErrVideoNotFound
		}
		e := s.event(ctx, "UPDATE_VIDEO", outbox.Success, "updated video "+quote(m.Title)).On(id).With("owner_id", r.OwnerID)
		return s.events.Add(ctx, tx, e)
	})
	if err != nil {
		return Video{}, fmt.Errorf("update video: %w", err)
	}
	r.Title, r.Description = m.Title, m.Description
	return r.public(), nil
}

// Delete moves a video to the trash (owner or admin); its bytes stop
// counting toward the quota. Deleting a video already in the trash
// succeeds and finishes freeing its bytes if an earlier attempt could not.
func (s *Service) Delete(ctx context.Context, c authn.Caller, id string) error {
	r, err := s.owned(ctx, c, id)
	if err != nil {
		return err
	}
	if r.Status == StatusProcessing {
		return ErrProcessing
	}
	if r.DeletedAt == nil {
		now := micros(s.now())
		err = s.db.Tx(ctx, func(tx *sql.Tx) error {
			done, err := s.store.trashOne(ctx, tx, id, now)
			if err != nil || !done {
				return err
			}
			e := s.event(ctx, "DELETE_VIDEO", outbox.Success, "moved video "+quote(r.Title)+" to the trash").On(id).
				With("owner_id", r.OwnerID).With("size_bytes", r.SizeBytes)
			return s.events.Add(ctx, tx, e)
		})
		s.media.forget(id)
		if err != nil {
			return fmt.Errorf("delete video: %w", err)
		}
		if r, err = s.store.video(ctx, s.db.W, id); err != nil {
			return fmt.Errorf("delete video: %w", err)
		}
	}
	if r.QuotaState == quotaFreeing {
		return s.free(ctx, r)
	}
	return nil
}

// DeleteAll moves all the caller's videos to the trash and reports how
// many went.
func (s *Service) DeleteAll(ctx context.Context, c authn.Caller) (int, error) {
	var trashed []record
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if trashed, err = s.store.trashAll(ctx, tx, c.UserID, micros(s.now())); err != nil {
			return err
		}
		e := s.event(ctx, "DELETE_ALL_VIDEOS", outbox.Success, fmt.Sprintf("moved all %d videos to the trash", len(trashed))).
			On(c.UserID).With("count", len(trashed))
		return s.events.Add(ctx, tx, e)
	})
	// Forgotten even on an error: the commit may have happened.
	s.media.forget()
	if err != nil {
		return 0, fmt.Errorf("delete all videos: %w", err)
	}
	var firstErr error
	for _, r := range trashed {
		if r.QuotaState != quotaFreeing {
			continue
		}
		if err := s.free(ctx, r); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return len(trashed), firstErr
}

// free gives a trashed video's bytes back to its owner's quota, then marks
// it free. Free is idempotent per object, so a retry after a failure in
// between frees nothing twice.
func (s *Service) free(ctx context.Context, r record) error {
	for _, key := range r.objects() {
		if _, err := s.quota.Free(ctx, r.OwnerID, key); err != nil {
			return fmt.Errorf("free video bytes: %w", err)
		}
	}
	if _, err := s.store.setQuotaState(ctx, s.db.W, r.ID, quotaFreeing, quotaFree, micros(s.now())); err != nil {
		return fmt.Errorf("free video bytes: %w", err)
	}
	return nil
}

func (r record) objects() []string {
	if r.PosterKey == "" {
		return []string{r.VideoKey}
	}
	return []string{r.VideoKey, r.PosterKey}
}

// Restore takes a video out of the trash (owner or admin), charging its
// bytes to the owner's quota again: quota_exceeded (413) when they no
// longer fit. Restoring a video that is not in the trash returns it.
func (s *Service) Restore(ctx context.Context, c authn.Caller, id string) (Video, error) {
	r, err := s.owned(ctx, c, id)
	if err != nil {
		return Video{}, err
	}
	if r.DeletedAt == nil {
		return r.public(), nil
	}
	if r.PurgingAt.Valid {
		return Video{}, ErrVideoNotFound
	}
	if r.QuotaState == quotaFreeing {
		// An earlier delete could not give the bytes back yet: do it now,
		// so that the new reservation is not counted on top of them.
		if err := s.free(ctx, r); err != nil {
			return Video{}, err
		}
	}
	now := micros(s.now())
	if r.Status == StatusFailed {
		// A failed video holds no bytes: nothing to charge.
		done, err := s.store.restore(ctx, s.db.W, id, quotaFree, quotaFree, now)
		if err != nil {
			return Video{}, fmt.Errorf("restore video: %w", err)
		}
		if !done {
			return Video{}, ErrRestoreBusy
		}
		return s.restored(ctx, id)
	}
	claimed, err := s.store.claimRestore(ctx, s.db.W, id, now)
	if err != nil {
		return Video{}, fmt.Errorf("restore video: %w", err)
	}
	if !claimed {
		return Video{}, ErrRestoreBusy
	}
	if err := s.recharge(ctx, r); err != nil {
		// Give the claim back; the bytes were not (or are no longer)
		// charged.
		cctx, cancel := detached(ctx)
		defer cancel()
		if _, uerr := s.store.setQuotaState(cctx, s.db.W, id, quotaCharging, quotaFree, micros(s.now())); uerr != nil {
			s.log.Warn("unclaim restore", "video", id, "err", uerr)
		}
		return Video{}, err
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		done, err := s.store.restore(ctx, tx, id, quotaCharging, quotaCharged, micros(s.now()))
		if err != nil {
			return err
		}
		if !done {
			return errors.New("the restore claim was lost")
		}
		e := s.event(ctx, "RESTORE_VIDEO", outbox.Success, "restored video "+quote(r.Title)+" from the trash").On(id).
			With("owner_id", r.OwnerID).With("size_bytes", r.SizeBytes)
		return s.events.Add(ctx, tx, e)
	})
	if err != nil {
		cctx, cancel := detached(ctx)
		defer cancel()
		// Undo the charge; the maintenance job retries if this fails.
		for _, key := range r.objects() {
			if _, ferr := s.quota.Free(cctx, r.OwnerID, key); ferr != nil {
				s.log.Warn("undo restore charge", "video", id, "err", ferr)
				return Video{}, fmt.Errorf("restore video: %w", err)
			}
		}
		_, _ = s.store.setQuotaState(cctx, s.db.W, id, quotaCharging, quotaFree, micros(s.now()))
		return Video{}, fmt.Errorf("restore video: %w", err)
	}
	return s.restored(ctx, id)
}

func (s *Service) restored(ctx context.Context, id string) (Video, error) {
	r, err := s.store.video(ctx, s.db.W, id)
	if err != nil {
		return Video{}, fmt.Errorf("restore video: %w", err)
	}
	if r.PosterDue > 0 {
		s.announcePoster() // it went to the trash before its poster was cut
	}
	return r.public(), nil
}

// recharge reserves and commits a video's objects against its owner's
// quota, one reservation per object so each commits into its own object.
// On failure it releases what it reserved and frees what it committed.
func (s *Service) recharge(ctx context.Context, r record) error {
	type part struct {
		key   string
		bytes int64
		res   string
	}
	parts := []part{{key: r.VideoKey, bytes: r.SizeBytes}}
	if r.PosterKey != "" {
		parts = append(parts, part{key: r.PosterKey, bytes: r.PosterBytes})
	}
	undo := func(upTo int, committed bool) {
		cctx, cancel := detached(ctx)
		defer cancel()
		for i := 0; i < upTo; i++ {
			if err := s.quota.Release(cctx, parts[i].res); err != nil {
				s.log.Warn("release restore reservation", "video", r.ID, "err", err)
			}
			if committed {
				if _, err := s.quota.Free(cctx, r.OwnerID, parts[i].key); err != nil {
					s.log.Warn("free restore charge", "video", r.ID, "err", err)
				}
			}
		}
	}
	for i := range parts {
		h, err := s.quota.Reserve(ctx, r.OwnerID, parts[i].bytes, restoreStale)
		if err != nil {
			undo(i, false)
			return fmt.Errorf("restore video: %w", err)
		}
		parts[i].res = h.ID
	}
	for i := range parts {
		if err := s.quota.Commit(ctx, parts[i].res, parts[i].bytes, parts[i].key); err != nil {
			undo(len(parts), true)
			return fmt.Errorf("restore video: %w", err)
		}
	}
	return nil
}

// ---------------------------------------------------------------------
// Playback

// Grant is a playback grant: signed media paths for one viewer and video.
type Grant struct {
	VideoPath string
	// PosterPath is empty when the video has no poster and none is being
	// cut; while one is, the path answers 404 until it is there.
	PosterPath string
	ExpiresAt  time.Time
}

// Playback grants the caller signed URLs (paths under /media) for a video
// they can see, valid for the configured PlaybackTTL, and records
// STREAM_VIDEO once for the grant.
func (s *Service) Playback(ctx context.Context, c authn.Caller, id string) (Grant, error) {
	r, err := s.load(ctx, id)
	if err != nil {
		return Grant{}, err
	}
	if !r.visibleTo(c) {
		return Grant{}, ErrVideoNotFound
	}
	g, err := s.Sign(c, r.public())
	if err != nil {
		return Grant{}, err
	}
	s.events.RecordOrLog(ctx, s.event(ctx, "STREAM_VIDEO", outbox.Success, "started playback of "+quote(r.Title)).On(id).
		With("owner_id", r.OwnerID).With("expires_at", g.ExpiresAt.Format(time.RFC3339)))
	return g, nil
}

// Sign grants the caller signed URLs for a video this service has just
// given them (from a listing), without reading it again and without
// recording STREAM_VIDEO: a listing that carries playable URLs, as the
// original system's did, is not a playback. A video that is not ready or
// is in the trash cannot be played: ErrVideoNotFound.
func (s *Service) Sign(c authn.Caller, v Video) (Grant, error) {
	if v.Status != StatusReady || v.DeletedAt != nil || !validID(v.ID) {
		return Grant{}, ErrVideoNotFound
	}
	exp := s.now().Add(s.cfg.PlaybackTTL).Truncate(time.Second).UTC()
	token := s.signer.token(v.ID, c.UserID, exp)
	g := Grant{VideoPath: MediaPath(token, v.ID, VideoFile(v.ContentType)), ExpiresAt: exp}
	if v.HasPoster {
		g.PosterPath = MediaPath(token, v.ID, PosterFile)
	}
	return g, nil
}

// MediaPath is the path of a file of a video under a playback token.
func MediaPath(token, videoID, file string) string {
	return "/media/" + token + "/" + videoID + "/" + file
}

// Media is a file of a video opened for serving.
type Media struct {
	blob.Object
	ContentType string
	Viewer      string
}

// OpenMedia checks a media token and opens the named file (the video under
// any "video.*" name, the poster as "poster.jpg" or the ".jpg" sibling of
// the video's name, as the original system's clients derive it). A bad
// token is ErrBadSignature or ErrURLExpired (403); a video that is no
// longer playable (trashed, purged) is ErrVideoNotFound.
func (s *Service) OpenMedia(ctx context.Context, token, id, file string) (*Media, error) {
	now := s.now()
	viewer, err := s.signer.verify(token, id, now)
	if err != nil {
		return nil, err
	}
	p, err := s.playable(ctx, id, now)
	if err != nil {
		return nil, err
	}
	key, ctype := p.videoKey, p.contentType
	switch {
	case file == PosterFile || (strings.HasPrefix(file, "video.") && strings.HasSuffix(file, ".jpg")):
		if p.posterKey == "" {
			return nil, ErrVideoNotFound
		}
		key, ctype = p.posterKey, "image/jpeg"
	case strings.HasPrefix(file, "video."):
	default:
		return nil, ErrVideoNotFound
	}
	obj, err := s.blobs.Open(ctx, key)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, ErrVideoNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("open media: %w", err)
	}
	return &Media{Object: obj, ContentType: ctype, Viewer: viewer}, nil
}

// playable returns what serving a ready video that is not in the trash
// needs, from the media cache or the database; any other video is
// ErrVideoNotFound (and not cached).
func (s *Service) playable(ctx context.Context, id string, now time.Time) (playable, error) {
	p, ok, gen := s.media.get(id, now)
	if ok {
		return p, nil
	}
	r, err := s.load(ctx, id)
	if err != nil {
		return playable{}, err
	}
	if r.Status != StatusReady || r.DeletedAt != nil {
		return playable{}, ErrVideoNotFound
	}
	p = playable{videoKey: r.VideoKey, posterKey: r.PosterKey, contentType: r.ContentType}
	s.media.put(id, p, gen, now)
	return p, nil
}

// Allowance is what the viewer may still receive today (-1: no limit).
func (s *Service) Allowance(ctx context.Context, viewer string) (int64, error) {
	n, err := s.egress.Allowance(ctx, viewer)
	if err != nil {
		return 0, fmt.Errorf("egress allowance: %w", err)
	}
	return n, nil
}

// CountEgress adds bytes delivered to a viewer.
func (s *Service) CountEgress(viewer string, n int64) {
	if n > 0 {
		s.egress.Add(viewer, n)
	}
}

// EgressLimitError is ErrEgressLimit with the time until the next UTC day.
func (s *Service) EgressLimitError() error {
	now := s.now().UTC()
	next := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
	return ErrEgressLimit.WithRetryAfter(next.Sub(now))
}

// ---------------------------------------------------------------------
// Maintenance

// Purge deletes the blobs and rows of videos that have been in the trash
// longer than the retention, recording PURGE_VIDEO for each. Each video is
// marked before its blobs are deleted and removed after, so a purge
// interrupted half-way is finished by the next run; its bytes were freed
// when it went to the trash, so a purge frees nothing. It returns how many
// videos it purged.
func (s *Service) Purge(ctx context.Context) (int, error) {
	cutoff := micros(s.now().Add(-s.cfg.TrashRetention))
	n := 0
	for {
		rs, err := s.store.purgeable(ctx, cutoff, maintenanceBatch)
		if err != nil {
			return n, fmt.Errorf("purge: %w", err)
		}
		progressed := false
		for _, r := range rs {
			done, err := s.purgeOne(ctx, r, cutoff)
			if err != nil {
				return n, fmt.Errorf("purge video %s: %w", r.ID, err)
			}
			if done {
				n++
				progressed = true
			}
		}
		if len(rs) < maintenanceBatch || !progressed {
			return n, nil
		}
	}
}

func (s *Service) purgeOne(ctx context.Context, r record, cutoff int64) (bool, error) {
	marked, err := s.store.markPurging(ctx, s.db.W, r.ID, cutoff, micros(s.now()))
	s.media.forget(r.ID)
	if err != nil || !marked {
		return false, err // restored meanwhile, or an error
	}
	for _, key := range []string{r.VideoKey, blobKey(r.ID, PosterFile)} {
		if err := s.blobs.Delete(ctx, key); err != nil {
			return false, fmt.Errorf("delete blob: %w", err)
		}
	}
	_ = os.Remove(s.posterSource(r.ID)) // a poster still due when trashed
	var deleted bool
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if deleted, err = s.store.deletePurged(ctx, tx, r.ID); err != nil || !deleted {
			return err
		}
		e := s.event(ctx, "PURGE_VIDEO", outbox.Success, "purged video "+quote(r.Title)+" from the trash").
			ForUser(r.OwnerID).On(r.ID).With("size_bytes", r.SizeBytes).With("deleted_at", r.DeletedAt.Format(time.RFC3339))
		return s.events.Add(ctx, tx, e)
	})
	return deleted, err
}

// Maintain finishes what dead processes left half-done: frees the bytes of
// trashed videos whose free did not complete, undoes restores that never
// finished, fails uploads whose finalisation died (deleting their blobs and
// charges), and then purges. Run it periodically; it is safe in several
// replicas at once.
func (s *Service) Maintain(ctx context.Context) error {
	now := s.now()
	var errsOut []error
	freeing, err := s.store.quotaPending(ctx, quotaFreeing, micros(now.Add(-time.Minute)), maintenanceBatch)
	if err != nil {
		return err
	}
	for _, r := range freeing {
		if err := s.free(ctx, r); err != nil {
			errsOut = append(errsOut, err)
		}
	}
	charging, err := s.store.quotaPending(ctx, quotaCharging, micros(now.Add(-restoreStale)), maintenanceBatch)
	if err != nil {
		return err
	}
	for _, r := range charging {
		if r.DeletedAt == nil {
			continue // a finalising upload: handled below once stale
		}
		// A restore that died between its claim and its end: the bytes
		// may have been committed; free them (idempotent) and give the
		// video back to the trash.
		if err := s.freeObjects(ctx, r); err != nil {
			errsOut = append(errsOut, err)
			continue
		}
		if _, err := s.store.setQuotaState(ctx, s.db.W, r.ID, quotaCharging, quotaFree, micros(s.now())); err != nil {
			errsOut = append(errsOut, err)
		}
	}
	stale, err := s.store.staleProcessing(ctx, micros(now.Add(-staleAfter)), maintenanceBatch)
	if err != nil {
		return err
	}
	for _, r := range stale {
		if err := s.dropBlobsAndCharges(ctx, r); err != nil {
			errsOut = append(errsOut, err)
			continue
		}
		if _, err := s.store.markFailed(ctx, s.db.W, r.ID, micros(s.now())); err != nil {
			errsOut = append(errsOut, err)
			continue
		}
		s.log.Warn("an upload's finalisation was abandoned; marked failed", "video", r.ID)
		s.events.RecordOrLog(ctx, s.event(ctx, "UPLOAD_VIDEO", outbox.Failure, "upload abandoned while being processed").
			ForUser(r.OwnerID).On(r.ID))
	}
	if _, err := s.Purge(ctx); err != nil {
		errsOut = append(errsOut, err)
	}
	if err := s.store.forgetUploads(ctx, micros(now.Add(-7*24*time.Hour))); err != nil {
		errsOut = append(errsOut, err)
	}
	s.removeStaleSpool()
	return errors.Join(errsOut...)
}

func (s *Service) freeObjects(ctx context.Context, r record) error {
	for _, key := range r.objects() {
		if _, err := s.quota.Free(ctx, r.OwnerID, key); err != nil {
			return fmt.Errorf("free video bytes: %w", err)
		}
	}
	return nil
}
