package videos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/probe"
)

// Posters are cut after the upload has been answered (decision 0004):
// cutting one means starting ffmpeg, and an upload whose bytes are stored
// and playable should not wait for that. finalise marks the video ready
// with its poster due (videos.poster_due) and wakes the worker; the worker
// (RunPosters, one per process) takes due videos in batches, cuts their
// posters in one ffmpeg run (probe's batching), stores and charges each
// like any stored byte, and attaches it to its video.
//
// The due mark is in the database, so a poster survives a stop or a
// crash: a worker takes a batch by leasing it (claimPosters); one that
// dies leaves the lease to run out and any replica's worker takes the
// batch again. The video's bytes come from a second name of the spooled
// upload that finalise leaves in the spool directory, or, when that is
// gone (another replica's upload, a restart, a day in the trash), from
// the blob store.

const (
	// posterBatch is how many videos a worker takes at once: what one
	// ffmpeg run cuts (probe's maxFrameBatch). One run at a time leaves
	// the other cores to the requests: a run per core drains a backlog
	// faster but slows reads under load (see docs/benchmarks.md).
	posterBatch = 8
	// posterLease is how long a worker holds the videos it took before
	// another may take them: far longer than a batch takes.
	posterLease = 10 * time.Minute
	// posterRetry is the pause after an attempt that failed for a reason
	// that may pass (storage unavailable, a timeout).
	posterRetry = time.Minute
	// posterTries is how many attempts a video gets before it goes
	// without a poster.
	posterTries = 3
	// posterPoll is how often a worker looks for due posters nobody
	// announced to it: another replica's, or those a crash left.
	posterPoll = 30 * time.Second
)

// PosterCounts are running totals of what this process's poster worker
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

// PosterCounts returns the worker's running totals.
func (s *Service) PosterCounts() *PosterCounts { return &s.posterCounts }

// PostersDue counts the videos, ready and not in the trash, whose poster
// is still to be cut, by any replica.
func (s *Service) PostersDue(ctx context.Context) (int64, error) {
	return s.store.postersDue(ctx)
}

// posterSource is where finalise leaves a second name of an upload's file
// for its poster. The upload- prefix puts it under removeStaleSpool.
func (s *Service) posterSource(id string) string {
	return filepath.Join(s.cfg.SpoolDir, "upload-"+id+".poster-source")
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

// announcePoster wakes the worker: a poster is due.
func (s *Service) announcePoster() {
	select {
	case s.posterKick <- struct{}{}:
	default: // already woken
	}
}

// RunPosters cuts due posters until ctx ends: as soon as an upload in this
// process announces one, and every posterPoll for the others. Run it as a
// background task in every process that serves uploads.
func (s *Service) RunPosters(ctx context.Context) error {
	t := time.NewTicker(posterPoll)
	defer t.Stop()
	for {
		if _, err := s.CutPosters(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("cut posters", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.posterKick:
		case <-t.C:
		}
	}
}

// CutPosters takes due posters, a batch at a time, until none is left to
// take, and returns how many videos it took. A video whose attempt fails
// is paused (posterRetry) rather than taken again in the same call.
func (s *Service) CutPosters(ctx context.Context) (int, error) {
	n := 0
	for ctx.Err() == nil {
		now := s.now()
		rs, err := s.store.claimPosters(ctx, s.db.W, micros(now), micros(now.Add(posterLease)), posterBatch)
		if err != nil {
			return n, err
		}
		if len(rs) == 0 {
			return n, nil
		}
		// The batch must end well within its lease, or another worker
		// would take the same videos.
		bctx, cancel := context.WithTimeout(ctx, posterLease/2)
		var wg sync.WaitGroup
		for _, r := range rs {
			// Cut together: probe batches concurrent requests into one
			// ffmpeg run.
			wg.Go(func() { s.cutPoster(bctx, r) })
		}
		wg.Wait()
		cancel()
		n += len(rs)
	}
	return n, ctx.Err()
}

// cutPoster cuts, stores and attaches the poster of one video the worker
// has taken.
func (s *Service) cutPoster(ctx context.Context, r record) {
	src, done, err := s.posterInput(ctx, r)
	if err != nil {
		s.posterFailed(ctx, r, err)
		return
	}
	defer done()
	path, err := s.prober.Poster(ctx, src, probe.Info{DurationSeconds: r.DurationSeconds})
	if errors.Is(err, probe.ErrNoPoster) && !errors.Is(err, context.DeadlineExceeded) {
		// Nothing to cut (no ffmpeg, no frame ffmpeg can decode): the
		// video goes without. A run that ran out of time is tried again
		// instead: it runs on idle cores only, and on a busy machine may
		// not have had its share (posterTries bounds a file that always
		// takes too long).
		s.log.Info("no poster", "video", r.ID, "err", err)
		s.attach(ctx, r, record{})
		return
	}
	if err != nil {
		s.posterFailed(ctx, r, err)
		return
	}
	defer func() { _ = os.Remove(path) }()
	// An attempt that died after charging the poster left that charge:
	// free it first, so that the one below is the only one (Free is
	// idempotent). A first attempt (claimPosters counts them) has nothing
	// to free, so it spares the storage service the call.
	if r.PosterTries > 1 {
		if _, err := s.quota.Free(ctx, r.OwnerID, blobKey(r.ID, PosterFile)); err != nil {
			s.posterFailed(ctx, r, fmt.Errorf("free an earlier poster charge: %w", err))
			return
		}
	}
	got := r
	if err := s.storePoster(ctx, &got, path); err != nil {
		s.posterFailed(ctx, r, err)
		return
	}
	s.attach(ctx, r, got)
}

// attach records got's poster (none if its key is empty) on video r and
// removes the poster's source. A video that went to the trash or away
// meanwhile gets nothing: the stored poster and its charge are given
// back, and a video in the trash keeps its poster due for a restore.
func (s *Service) attach(ctx context.Context, r, got record) {
	ok, err := s.store.attachPoster(ctx, s.db.W, r.ID, got.PosterKey, got.PosterBytes, micros(s.now()))
	if err != nil {
		s.dropPoster(ctx, r, got)
		s.posterFailed(ctx, r, err)
		return
	}
	if !ok {
		s.dropPoster(ctx, r, got)
		cctx, cancel := detached(ctx)
		defer cancel()
		if err := s.store.posterDueAt(cctx, s.db.W, r.ID, 1); err != nil {
			s.log.Warn("poster of a trashed video", "video", r.ID, "err", err)
		}
		return
	}
	if got.PosterKey != "" {
		s.posterCounts.Cut.Add(1)
	} else {
		s.posterCounts.None.Add(1)
	}
	s.media.forget(r.ID)
	_ = os.Remove(s.posterSource(r.ID))
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

// posterFailed pauses a video's poster after a failed attempt, or gives
// it up after posterTries. A worker stopping (ctx cancelled, not timed
// out) gives its lease back at once, so that the next worker need not
// wait for it to run out.
func (s *Service) posterFailed(ctx context.Context, r record, err error) {
	at := micros(s.now().Add(posterRetry))
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		at = 1
	case r.PosterTries >= posterTries:
		s.log.Warn("no poster: giving up", "video", r.ID, "tries", r.PosterTries, "err", err)
		s.posterCounts.None.Add(1)
		at = 0
		_ = os.Remove(s.posterSource(r.ID))
	default:
		s.log.Warn("poster failed; will try again", "video", r.ID, "tries", r.PosterTries, "err", err)
		s.posterCounts.Failed.Add(1)
	}
	cctx, cancel := detached(ctx)
	defer cancel()
	if err := s.store.posterDueAt(cctx, s.db.W, r.ID, at); err != nil {
		s.log.Warn("poster failed", "video", r.ID, "err", err)
	}
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
