package videos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/reel-video/reel/internal/platform/outbox"
)

// staleAfter is how long a step (finalising an upload, a restore) may take
// before the maintenance job treats it as abandoned by a dead process.
const staleAfter = 2 * time.Hour

// maintenanceBatch bounds the rows one maintenance pass handles.
const maintenanceBatch = 100

// SweepSpool deletes this process's spool files, posters and poster
// sources (upload-*) left behind a day ago or more: by a crashed process,
// or a poster source whose video went to the trash before its poster was
// cut (a poster job reads the stored video when its source is gone). The
// spool is local, so every process runs it, not one replica's job.
func (s *Service) SweepSpool(context.Context) error {
	s.removeStaleSpool()
	return nil
}

// Maintain finishes what dead processes left half-done: frees the bytes of
// trashed videos whose free did not complete, undoes restores that never
// finished, fails uploads whose finalisation died (deleting their blobs and
// charges), commits the upload volume ready videos still owe (volume.go),
// gives a poster job to live videos waiting for a poster without
// one, streaming jobs to a few videos that never had any (backfill.go),
// and forgets closed uploads. The maintenance job runs it every
// minute (workers.go); it is safe in several replicas at once.
func (s *Service) Maintain(ctx context.Context) error {
	now := s.now()
	var errsOut []error
	freeing, err := s.store.quotaPending(ctx, quotaFreeing, micros(now.Add(-time.Minute)), 0, maintenanceBatch)
	if err != nil {
		return err
	}
	for _, r := range freeing {
		if err := s.free(ctx, r); err != nil {
			errsOut = append(errsOut, err)
		}
	}
	charging, err := s.store.quotaPending(ctx, quotaCharging, micros(now.Add(-restoreStale)), micros(now), maintenanceBatch)
	if err != nil {
		return err
	}
	for _, r := range charging {
		if r.DeletedAt == nil {
			continue // a finalising upload: handled below once stale
		}
		// A restore that died between its claim and its end (its lease
		// lapsed; the previous release's claims: after restoreStale): the
		// bytes may have been committed; free them (idempotent) and give
		// the video back to the trash.
		if err := s.freeObjects(ctx, r); err != nil {
			errsOut = append(errsOut, err)
			continue
		}
		if _, err := s.store.setQuotaState(ctx, s.db.W, r.ID, quotaCharging, quotaFree, micros(s.now())); err != nil {
			errsOut = append(errsOut, err)
		}
	}
	stale, err := s.store.staleProcessing(ctx, micros(now.Add(-staleAfter)), micros(now), maintenanceBatch)
	if err != nil {
		return err
	}
	for _, r := range stale {
		if err := s.dropBlobsAndCharges(ctx, r); err != nil {
			errsOut = append(errsOut, err)
			continue
		}
		// Its poster source, if the dead finalisation ran here (else the
		// spool sweep of its process takes it a day on).
		_ = os.Remove(s.posterSource(r.ID))
		if _, err := s.store.markFailed(ctx, s.db.W, r.ID, micros(s.now())); err != nil {
			errsOut = append(errsOut, err)
			continue
		}
		s.log.Warn("an upload's finalisation was abandoned; marked failed", "video", r.ID)
		s.events.RecordOrLog(ctx, s.event(ctx, "UPLOAD_VIDEO", outbox.Failure, "upload abandoned while being processed").
			ForUser(r.OwnerID).On(r.ID))
	}
	if err := s.settleVolumes(ctx); err != nil {
		errsOut = append(errsOut, err)
	}
	if err := s.enqueueMissing(ctx); err != nil {
		errsOut = append(errsOut, err)
	}
	if err := s.backfillStreaming(ctx, backfillBatch); err != nil {
		errsOut = append(errsOut, err)
	}
	if err := s.store.forgetUploads(ctx, micros(now.Add(-7*24*time.Hour))); err != nil {
		errsOut = append(errsOut, err)
	}
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

// Clean-up that cannot reach a dependency.
//
// When a failed upload is undone while the storage or usage service is
// down, the undo fails too: its reservations would stay held until they
// expire (ReserveTTL, hours), and its processing row and blobs until the
// maintenance job takes the row for abandoned (staleAfter, hours). So such
// a clean-up is retried in the background, with capped exponential
// backoff, until it succeeds or cleanupRetryFor has passed: every step of
// it is idempotent. Should the process stop first, the expiry of the
// reservations and the maintenance job remain the backstop.
const (
	cleanupRetryFor   = 15 * time.Minute
	cleanupFirstRetry = time.Second
	cleanupMaxWait    = 15 * time.Second
	cleanupAttempt    = time.Minute
	// maxRetrying bounds the clean-ups retrying at once: in a long outage
	// of a busy server, the backstops take the rest rather than memory
	// filling with sleeping goroutines.
	maxRetrying = 1000
)

// cleanUp runs fn now and, if that fails (a service it needs is down),
// again in the background (retryCleanup). attrs name what it cleans up,
// for the log.
func (s *Service) cleanUp(ctx context.Context, what string, attrs []any, fn func(context.Context) error) {
	if err := fn(ctx); err != nil {
		s.log.Warn(what+"; retrying in the background", append(attrs, "err", err)...)
		s.retryCleanup(what, attrs, fn)
	}
}

// retryCleanup runs fn again in the background until it succeeds. attrs
// name what it cleans up, for the log.
func (s *Service) retryCleanup(what string, attrs []any, fn func(context.Context) error) {
	if s.retrying.Add(1) > maxRetrying {
		s.retrying.Add(-1)
		s.log.Error(what+": too many clean-ups retrying already; the reservations' expiry and the maintenance job finish it", attrs...)
		return
	}
	go func() {
		defer s.retrying.Add(-1)
		deadline := time.Now().Add(cleanupRetryFor)
		wait := cleanupFirstRetry
		for attempt := 2; ; attempt++ {
			time.Sleep(wait)
			ctx, cancel := context.WithTimeout(context.Background(), cleanupAttempt)
			err := fn(ctx)
			cancel()
			if err == nil {
				s.log.Info(what+": done on a later attempt", append(attrs, "attempt", attempt)...)
				return
			}
			if time.Now().After(deadline) {
				s.log.Error(what+": still failing, giving up; the reservations' expiry and the maintenance job finish it",
					append(attrs, "attempt", attempt, "err", err)...)
				return
			}
			wait = min(2*wait, cleanupMaxWait)
		}
	}()
}
