package videos

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/media"
	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/outbox"
)

// arrived is an upload whose bytes have all arrived in a local file.
type arrived struct {
	Path string
	Size int64
	Meta Meta
	// Via names the upload route, for the activity log ("multipart", "tus").
	Via string
	// Upload is the resumable upload the bytes arrived by ("" for a
	// multipart upload). Its video takes its id, so that a finalisation a
	// crash cut short is taken up again under the same id (the same blob
	// keys, the same storage commit), and the ready transaction closes it.
	Upload string
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

// finalise turns an admitted upload whose bytes are in in.Path into a
// ready video: it probes the file (ErrNotVideo when it is not a video),
// stores it in the blob store, commits the real size to the quota and the
// daily upload volume, and records the video, with its UPLOAD_VIDEO event
// and its poster job, in one transaction. The job cuts the poster
// afterwards (posters.go). On any failure it gives back
// everything (reservations, blobs, charged bytes) and returns the error.
// The file at in.Path may be moved into the blob store (a disk store on
// the same filesystem takes it by a rename); the caller removes whatever
// is left at in.Path, success or failure.
//
// finalise runs to the end even if ctx is cancelled: all the bytes have
// arrived, so the work is worth finishing.
//
// A resumable upload's failure first closes the upload as failed; only
// the attempt that closed it gives back: one that cannot (the database
// is down) leaves the upload open, with its row, bytes and reservations,
// for the recovery to take up again (TUS.Finish), and one that finds it
// closed already (another attempt finished it) touches nothing. Another
// attempt at work on the upload is ErrUploadFinalising.
func (s *Service) finalise(ctx context.Context, adm *admission, in arrived) (Video, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.FinaliseTimeout)
	defer cancel()
	var inserted *record
	v, err := s.finaliseSteps(ctx, adm, in, &inserted)
	if err != nil {
		if errors.Is(err, errFinaliseBusy) {
			return Video{}, ErrUploadFinalising
		}
		if in.Upload != "" {
			closed, cerr := s.store.closeUpload(ctx, s.db.W, in.Upload, uploadFailed, "", micros(s.now()))
			if cerr != nil || !closed {
				if cerr != nil {
					s.log.Warn("close a failed upload; left open for the recovery", "upload", in.Upload, "err", cerr)
				}
				return Video{}, err
			}
		}
		if inserted != nil {
			s.undoFinalise(ctx, *inserted)
		}
		s.releaseAdmission(ctx, adm)
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

// finaliseSteps does the work of finalise; it sets *inserted to the row
// once it owns one, for finalise to undo on failure.
func (s *Service) finaliseSteps(ctx context.Context, adm *admission, in arrived, inserted **record) (Video, error) {
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
	if errors.Is(err, media.ErrNotVideo) {
		return Video{}, notVideo(err)
	}
	if err != nil {
		return Video{}, fmt.Errorf("finalise upload: probe: %w", err)
	}

	now := s.now()
	id := in.Upload
	if id == "" {
		id = uuid.Must(uuid.NewV7()).String()
	}
	rec := record{
		Video: Video{
			ID: id, OwnerID: adm.OwnerID, Title: meta.Title, Description: meta.Description, Filename: meta.Filename,
			Status: StatusProcessing, SizeBytes: in.Size, ContentType: info.ContentType,
			DurationSeconds: info.DurationSeconds, Width: info.Width, Height: info.Height, CreatedAt: now.UTC().Truncate(time.Microsecond),
		},
		VideoCodec: info.VideoCodec, AudioCodec: info.AudioCodec,
		VideoKey:   blobKey(id, VideoFile(info.ContentType)),
		QuotaState: quotaCharging, QuotaAt: micros(now), UpdatedAt: micros(now),
		LeaseUntil: micros(now.Add(s.cfg.ReserveLease)),
	}
	// The row comes first, in state processing: if this process dies
	// from here on, the maintenance job finds the row and undoes the rest.
	// The row is a lease, renewed as the upload's reservations are, so
	// that a killed process's row is undone within minutes, not after
	// staleAfter; its poster source and reservations go with it.
	if in.Upload == "" {
		if err := s.store.insertVideo(ctx, s.db.W, rec); err != nil {
			return Video{}, fmt.Errorf("finalise upload: %w", err)
		}
	} else if err := s.takeFinalise(ctx, rec); err != nil {
		return Video{}, err
	}
	*inserted = &rec
	defer s.keepAlive(s.rowLease(id, s.store.renewFinalise))()
	ok := false

	// The poster is cut after the answer (posters.go), from a second name
	// of the spooled file: putFile may move the file into the blob store
	// or the caller remove it. Without that name the poster job reads the
	// stored video instead.
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
	// Read before the transaction, which then holds its write connection
	// only for its own statements.
	plan, err := s.planFair(ctx, rec.OwnerID)
	if err != nil {
		return Video{}, fmt.Errorf("finalise upload: %w", err)
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		done, err := s.store.markReady(ctx, tx, rec, adm.limitID, micros(s.now()))
		if err != nil {
			return err
		}
		if !done {
			return errors.New("the processing row vanished")
		}
		if in.Upload != "" {
			closed, err := s.store.closeUpload(ctx, tx, in.Upload, uploadDone, rec.ID, micros(s.now()))
			if err != nil {
				return err
			}
			if !closed {
				return errors.New("the upload is no longer open")
			}
		}
		// In the same transaction: a video is never ready without its
		// poster job, and a rolled-back one never has one.
		if err := s.enqueueTx(ctx, tx, rec, plan, append([]string{KindPoster}, s.streamingKinds()...)...); err != nil {
			return err
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
	s.changed(rec.ID)
	// The day's volume is committed last, once the video stands: usage
	// cannot give volume back, so a failure before this point must leave
	// it uncounted (finalise releases the reservation). The ready
	// transaction recorded it as owed, so a commit that fails now (usage
	// unreachable) or a process killed before it leaves it to the
	// maintenance job (volume.go) rather than losing it.
	adm.limitCommitted = true
	if err := s.settleVolume(ctx, rec.ID, adm.limitID, in.Size); err != nil {
		s.log.Warn("commit upload volume; the maintenance job retries", "video", rec.ID, "reservation", adm.limitID, "err", err)
	}
	return rec.public(), nil
}

func notVideo(err error) error {
	reason := strings.TrimPrefix(err.Error(), media.ErrNotVideo.Error()+": ")
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
