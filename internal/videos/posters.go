package videos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"

	"github.com/reel-video/reel/internal/media"
	"github.com/reel-video/reel/internal/platform/blob"
)

// Posters are cut after the upload has been answered (decision 0004):
// cutting one means starting ffmpeg, and an upload whose bytes are stored
// and playable should not wait for that. finalise enqueues a poster job in
// the transaction that marks the video ready (jobs.go); a worker of any
// replica runs it (workPoster): it cuts the frame, stores and charges it
// like any stored byte, and attaches it to its video. Poster jobs of one
// process run up to posterWorkers at once, and media's Prober cuts
// concurrent requests in one ffmpeg run, so a backlog is cut in batches.
//
// The video's bytes come from a second name of the spooled upload that
// finalise leaves in the spool directory, or, when that is gone (another
// replica's upload, a restart, a day in the trash), from the blob store.

// posterWorkers is how many poster jobs a process runs at once: what one
// ffmpeg run cuts (media's maxFrameBatch), so that a backlog is cut in
// batches while the other cores serve requests.
const posterWorkers = 8

// posterTimeout bounds a poster job: the Prober bounds the ffmpeg run itself
// (300 s on the clock), and the rest is copying a file and a few calls.
const posterTimeout = 6 * time.Minute

// PosterCounts are running totals of what this process's poster jobs
// did, for metrics.
type PosterCounts struct {
	Cut     atomic.Int64 // posters stored and attached
	None    atomic.Int64 // videos that went without one: nothing to cut, no room in the quota, given up
	Failed  atomic.Int64 // attempts that failed and will be tried again
	Dropped atomic.Int64 // posters given back: their video went to the trash meanwhile
	// SourcesSkipped counts uploads not kept in the spool for their poster
	// because the disk was short of its reserve (keepPosterSource).
	SourcesSkipped atomic.Int64
}

// PosterCounts returns the poster jobs' running totals.
func (s *Service) PosterCounts() *PosterCounts { return &s.posterCounts }

// posterSourceSuffix ends the name of a poster source (spool.go).
const posterSourceSuffix = ".poster-source"

// posterSource is where finalise leaves a second name of an upload's file
// for its poster. The upload- prefix puts it under removeStaleSpool.
func (s *Service) posterSource(id string) string {
	return filepath.Join(s.cfg.SpoolDir, "upload-"+id+posterSourceSuffix)
}

// keepPosterSource gives the spooled upload at path a second name, link,
// for the poster worker, unless that could fill the spool's disk. With a
// blob store that takes the file itself (the disk store renames it in),
// the name costs nothing. With one that copies it elsewhere (S3), the
// name keeps the upload's bytes here until its poster is cut, and posters
// are cut on idle cores, so a busy server builds a backlog of them. So
// the name is given only while the disk keeps its reserve free
// (spoolReserve) after it; otherwise the worker reads the stored video
// when it comes to this one.
func (s *Service) keepPosterSource(path string, size int64, link string) {
	if _, local := s.blobs.(blob.Importer); !local {
		free, total, err := s.spoolSpace(s.cfg.SpoolDir)
		if err == nil && (size < 0 || uint64(size)+spoolReserve(total) > free) {
			s.posterCounts.SourcesSkipped.Add(1)
			return
		}
	}
	if err := os.Link(path, link); err != nil {
		s.log.Debug("keep the upload for its poster", "source", link, "err", err)
	}
}

// spoolReserve is the free space the spool's file system keeps from
// poster sources: a tenth of it, and at least 1 GiB, for the uploads
// arriving meanwhile.
func spoolReserve(total uint64) uint64 { return max(total/10, 1<<30) }

// workPoster is the work of a poster job: it cuts, stores and attaches
// the poster of video id if it still wants one. attempt counts from 1; the
// last one that fails records that the video goes without.
func (s *Service) workPoster(ctx context.Context, id string, attempt, maxAttempts int) error {
	r, err := s.store.video(ctx, s.db.R, id)
	if errors.Is(err, ErrVideoNotFound) {
		return nil // purged meanwhile: nothing to do
	}
	if err != nil {
		return s.posterFailed(ctx, record{Video: Video{ID: id}}, attempt, maxAttempts, failed(msgReadVideo, err))
	}
	if !r.wantsPoster() {
		return nil // it has one, went without, or is in the trash
	}
	if r.PosterDue > 0 {
		// Marked due by the previous release during a rolling upgrade:
		// come back once none of its workers holds the video.
		until, err := s.store.takeLegacyPoster(ctx, s.db.W, id, micros(s.now()))
		if err != nil {
			return s.posterFailed(ctx, r, attempt, maxAttempts, failed(msgReadVideo, err))
		}
		if until > 0 {
			return river.JobSnooze(max(time.Second, fromMicros(until).Sub(s.now())))
		}
	}
	ctx, stop := s.watch(ctx, id)
	defer stop()
	err = s.cutPoster(ctx, r, attempt)
	if err == nil {
		return nil
	}
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errVideoGone):
		// Trashed, maybe on another replica: a restore enqueues the
		// poster again.
		return river.JobCancel(&jobError{msg: msgVideoGone, err: err})
	case errors.Is(cause, river.ErrJobCancelledRemotely):
		return &jobError{msg: msgCancelled, err: err} // River records it cancelled
	case ctx.Err() != nil && s.stopping.Load():
		// The process is stopping: the next one takes the job again at
		// once, without counting this attempt.
		return river.JobSnooze(0)
	}
	return s.posterFailed(ctx, r, attempt, maxAttempts, err)
}

// wantsPoster reports whether a video still waits for its poster: live,
// its bytes counted, with no poster and not gone without.
func (r record) wantsPoster() bool {
	return r.Status == StatusReady && r.DeletedAt == nil && r.QuotaState == quotaCharged && r.PosterKey == "" && !r.PosterNone
}

// cutPoster cuts, stores and attaches the poster of video r.
func (s *Service) cutPoster(ctx context.Context, r record, attempt int) error {
	src, done, err := s.posterInput(ctx, r)
	if err != nil {
		return failed(msgSource, err)
	}
	defer done()
	path, err := s.prober.Poster(ctx, src, media.Info{DurationSeconds: r.DurationSeconds})
	if errors.Is(err, media.ErrNoPoster) && !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		// Nothing to cut (no ffmpeg, no frame ffmpeg can decode): the
		// video goes without. A run that ran out of time is tried again
		// instead: it runs on idle cores only, and on a busy machine may
		// not have had its share (the job's attempts bound a file that
		// always takes too long).
		s.log.Info("no poster", "video", r.ID, "err", err)
		return s.attach(ctx, r, record{})
	}
	if err != nil {
		return failed(msgCut, err)
	}
	defer func() { _ = os.Remove(path) }()
	got := r
	if err := s.storePoster(ctx, &got, path, attempt); err != nil {
		return err
	}
	return s.attach(ctx, r, got)
}

// attach records got's poster (none if its key is empty) on video r and
// removes the poster's source. A video that went to the trash or away
// meanwhile gets nothing: the stored poster and its charge are given
// back, and a restore enqueues its poster again.
func (s *Service) attach(ctx context.Context, r, got record) error {
	ok, err := s.store.attachPoster(ctx, s.db.W, r.ID, got.PosterKey, got.PosterBytes, got.PosterKey == "", micros(s.now()))
	if err != nil || !ok {
		s.dropPoster(ctx, r, got)
		if err != nil {
			return failed(msgAttach, err)
		}
		return nil
	}
	if got.PosterKey != "" {
		s.posterCounts.Cut.Add(1)
	} else {
		s.posterCounts.None.Add(1)
	}
	s.changed(r.ID)
	_ = os.Remove(s.posterSource(r.ID))
	return nil
}

// dropPoster gives back a poster that could not be attached: its blob and
// its charge (retried in the background if storage is down).
func (s *Service) dropPoster(ctx context.Context, r, got record) {
	if got.PosterKey == "" {
		return
	}
	s.posterCounts.Dropped.Add(1)
	ctx, cancel := detached(ctx)
	defer cancel()
	s.cleanUp(ctx, "drop unattached poster", []any{"video", r.ID}, func(ctx context.Context) error {
		if _, err := s.quota.Free(ctx, r.OwnerID, got.PosterKey); err != nil {
			return err
		}
		return s.blobs.Delete(ctx, got.PosterKey)
	})
}

// posterFailed logs a failed attempt and returns its error for River,
// which tries the job again after a backoff; after the last attempt the
// video goes without a poster.
func (s *Service) posterFailed(ctx context.Context, r record, attempt, maxAttempts int, err error) error {
	if attempt < maxAttempts {
		s.log.Warn("poster failed; will try again", "video", r.ID, "attempt", attempt, "err", causeOf(err))
		s.posterCounts.Failed.Add(1)
		return err
	}
	s.log.Warn("no poster: giving up", "video", r.ID, "attempts", attempt, "err", causeOf(err))
	cctx, cancel := detached(ctx)
	defer cancel()
	if _, aerr := s.store.attachPoster(cctx, s.db.W, r.ID, "", 0, true, micros(s.now())); aerr != nil {
		s.log.Warn("mark a video without a poster", "video", r.ID, "err", aerr)
	}
	_ = os.Remove(s.posterSource(r.ID))
	s.posterCounts.None.Add(1)
	return err
}

// posterInput returns a local file holding video r's bytes: its poster
// source if finalise left one here, else a copy of the stored video in the
// spool directory, which done removes.
func (s *Service) posterInput(ctx context.Context, r record) (path string, done func(), err error) {
	src := s.posterSource(r.ID)
	if _, err := os.Stat(src); err == nil {
		return src, func() {}, nil
	}
	obj, err := s.blobs.Open(ctx, r.VideoKey)
	if err != nil {
		return "", nil, fmt.Errorf("open the stored video: %w", err)
	}
	defer func() { _ = obj.Close() }()
	f, err := s.spoolFile()
	if err != nil {
		return "", nil, err
	}
	done = func() { _ = os.Remove(f.Name()) }
	_, err = io.Copy(f, obj)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		done()
		return "", nil, fmt.Errorf("copy the stored video: %w", err)
	}
	return f.Name(), done, nil
}

// storePoster stores a poster and charges it to the owner's quota like
// every derived file (storeCharged), and records it in rec. An attempt
// that died after charging the poster left that charge: a retry frees it
// first, so that the new one is the only one (a first attempt has nothing
// to free and spares the storage service the call). When the quota has
// no room the video goes without: rec is left without a poster and the
// error is nil.
func (s *Service) storePoster(ctx context.Context, rec *record, path string, attempt int) error {
	f := &derivedFile{Name: PosterFile, Key: blobKey(rec.ID, PosterFile), ContentType: "image/jpeg", path: path}
	err := s.storeCharged(ctx, rec.OwnerID, []*derivedFile{f}, attempt > 1)
	switch {
	case errors.Is(err, errNoRoom):
		s.log.Info("no room in the quota for a poster; the video has none", "video", rec.ID, "bytes", f.Bytes)
		return nil
	case errors.Is(err, errCharging):
		return failed(msgCharge, err)
	case err != nil:
		return failed(msgStore, err)
	}
	rec.PosterKey, rec.PosterBytes = f.Key, f.Bytes
	return nil
}
