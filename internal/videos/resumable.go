package videos

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Resumable uploads: the service side of tus. The tus handler (tus.go)
// keeps the bytes; the service admits the upload at creation, remembers
// its owner and reservations in the uploads table, finalises it like a
// multipart upload when the last byte arrives, and gives everything back
// when it is terminated or abandoned.

// DefaultUploadExpiry is how long a resumable upload may sit idle before
// it is expired and its reservations and bytes released.
const DefaultUploadExpiry = 24 * time.Hour

// UploadInfo is a resumable upload as its owner may see it.
type UploadInfo struct {
	ID, OwnerID string
	Size        int64
	State       string
	// ExpiresAt is when an idle open upload expires.
	ExpiresAt time.Time
	// VideoID is the video a completed upload made.
	VideoID string
}

// Open reports whether the upload still accepts bytes.
func (u UploadInfo) Open() bool { return u.State == uploadOpen }

// Done reports whether the upload completed into a video.
func (u UploadInfo) Done() bool { return u.State == uploadDone }

func (s *Service) uploadExpiry() time.Duration {
	if s.cfg.UploadExpiry > 0 {
		return s.cfg.UploadExpiry
	}
	return DefaultUploadExpiry
}

// CreateUpload admits a resumable upload of size bytes for the caller
// (reserving quota and daily volume for as long as an idle upload lives)
// and records it. It returns the new upload's id.
func (s *Service) CreateUpload(ctx context.Context, c authn.Caller, size int64, meta Meta) (string, error) {
	meta, err := meta.Validate()
	if err != nil {
		return "", err
	}
	adm, err := s.admit(ctx, c.UserID, size, s.uploadExpiry())
	if err != nil {
		return "", err
	}
	now := s.now()
	u := uploadRow{
		ID: uuid.Must(uuid.NewV7()).String(), OwnerID: c.UserID,
		Title: meta.Title, Description: meta.Description, Filename: meta.Filename,
		SizeBytes: size, QuotaRes: adm.quotaID, LimitRes: adm.limitID, State: uploadOpen,
		CreatedAt: micros(now), UpdatedAt: micros(now), ExpiresAt: micros(now.Add(s.uploadExpiry())),
	}
	if err := s.store.insertUpload(ctx, s.db.W, u); err != nil {
		s.releaseAdmission(ctx, adm)
		return "", fmt.Errorf("create upload: %w", err)
	}
	return u.ID, nil
}

// Upload returns the caller's upload; anyone else's is ErrUploadNotFound,
// so uploads are private to their creator.
func (s *Service) Upload(ctx context.Context, c authn.Caller, id string) (UploadInfo, error) {
	if !validID(id) {
		return UploadInfo{}, ErrUploadNotFound
	}
	u, err := s.store.upload(ctx, s.db.R, id)
	if err != nil {
		return UploadInfo{}, err
	}
	if u.OwnerID != c.UserID {
		return UploadInfo{}, ErrUploadNotFound
	}
	return u.info(), nil
}

func (u uploadRow) info() UploadInfo {
	return UploadInfo{ID: u.ID, OwnerID: u.OwnerID, Size: u.SizeBytes, State: u.State, VideoID: u.VideoID.String,
		ExpiresAt: fromMicros(u.ExpiresAt)}
}

// TouchUpload pushes an open upload's expiry on, as bytes arrive.
func (s *Service) TouchUpload(ctx context.Context, id string) error {
	now := s.now()
	return s.store.touchUpload(ctx, s.db.W, id, micros(now), micros(now.Add(s.uploadExpiry())))
}

// ErrUploadFinalising answers a request for a resumable upload whose
// video another attempt is making (a live finalisation holds its row).
var ErrUploadFinalising = errs.New(errs.Unavailable, "unavailable", "the upload's video is being made; try again shortly").
	WithRetryAfter(5 * time.Second)

// errFinaliseBusy is takeFinalise's ErrUploadFinalising, told apart from
// any other unavailable dependency (errs.Error matches by code).
var errFinaliseBusy = errors.New("a live attempt is finalising the upload")

// CompleteUpload finalises an upload whose bytes are all in path: the
// same pipeline as a multipart upload. It is also how an upload whose
// finalisation a crash cut short is taken up again (TUS.Finish): the video
// takes the upload's id, so the dead attempt's row is taken over once its
// lease lapsed (ErrUploadFinalising until then). On success the upload is
// done, on a failure that closed it failed its reservations are released;
// either way the caller deletes the bytes. An upload left open (see
// finalise) keeps them. An upload done already answers its video.
func (s *Service) CompleteUpload(ctx context.Context, id, path string, size int64) (Video, error) {
	u, err := s.store.upload(ctx, s.db.W, id)
	if err != nil {
		return Video{}, err
	}
	if u.State == uploadDone && u.VideoID.Valid {
		r, err := s.store.video(ctx, s.db.W, u.VideoID.String)
		if err != nil {
			return Video{}, err
		}
		return r.public(), nil
	}
	if u.State != uploadOpen {
		return Video{}, ErrUploadNotFound
	}
	if size != u.SizeBytes {
		return Video{}, fmt.Errorf("complete upload %s: %d bytes arrived, %d were declared", id, size, u.SizeBytes)
	}
	adm := resumeAdmission(u.OwnerID, u.SizeBytes, u.QuotaRes, u.LimitRes)
	return s.finalise(ctx, adm, arrived{
		Path: path, Size: size, Via: "tus", Upload: id,
		Meta: Meta{Title: u.Title, Description: u.Description, Filename: u.Filename},
	})
}

// takeFinalise inserts a resumable upload's processing row, taking over
// the row of an attempt whose lease lapsed; errFinaliseBusy while a live
// attempt holds it.
func (s *Service) takeFinalise(ctx context.Context, rec record) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.store.dropLapsedFinalise(ctx, tx, rec.ID, micros(s.now())); err != nil {
			return err
		}
		return s.store.insertVideo(ctx, tx, rec)
	})
	if sqldb.IsUniqueViolation(err) {
		return errFinaliseBusy
	}
	if err != nil {
		return fmt.Errorf("finalise upload: %w", err)
	}
	return nil
}

// FinishingUploads lists open uploads whose finalisation died: their row
// is processing and its lease lapsed.
func (s *Service) FinishingUploads(ctx context.Context) ([]string, error) {
	return s.store.uploadsFinishing(ctx, micros(s.now()), maintenanceBatch)
}

// AbortUpload releases an open upload's reservations and closes it as
// terminated (by its owner) or expired. It reports false when the upload
// was no longer open.
func (s *Service) AbortUpload(ctx context.Context, id string, expired bool) (bool, error) {
	u, err := s.store.upload(ctx, s.db.W, id)
	if errors.Is(err, ErrUploadNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if u.State != uploadOpen {
		return false, nil
	}
	state := uploadTerminated
	if expired {
		state = uploadExpired
	}
	closed, err := s.store.closeUpload(ctx, s.db.W, id, state, "", micros(s.now()))
	if err != nil || !closed {
		return false, err
	}
	s.releaseAdmission(ctx, resumeAdmission(u.OwnerID, u.SizeBytes, u.QuotaRes, u.LimitRes))
	return true, nil
}

// ExpiredUploads lists open uploads idle past their expiry.
func (s *Service) ExpiredUploads(ctx context.Context) ([]UploadInfo, error) {
	us, err := s.store.expiredUploads(ctx, micros(s.now()), maintenanceBatch)
	if err != nil {
		return nil, err
	}
	out := make([]UploadInfo, len(us))
	for i, u := range us {
		out[i] = u.info()
	}
	return out, nil
}

// uploadOpen reports whether upload id is open, reading the primary: a
// sweep must not take a fresh upload for an unknown one.
func (s *Service) uploadOpen(ctx context.Context, id string) (bool, error) {
	u, err := s.store.upload(ctx, s.db.W, id)
	if errors.Is(err, ErrUploadNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return u.State == uploadOpen, nil
}

// UploadExpiry is how long an idle resumable upload lives.
func (s *Service) UploadExpiry() time.Duration { return s.uploadExpiry() }

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.now() }
