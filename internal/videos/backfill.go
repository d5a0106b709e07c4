package videos

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// The backfill gives streaming jobs to live videos that never had any:
// uploaded before adaptive streaming existed, or while it was off
// (REEL_STREAMING=off, or no ffmpeg where they were uploaded). Each
// maintenance pass (Maintain) enqueues a few, oldest first, at
// priorityBackfill, so that they run only when no fresh upload's job
// waits, and only while few of them wait: a library of thousands of old
// videos trickles into the queue rather than flooding it.

// backfillBatch bounds the backfilled videos whose first transcode waits
// at once: a pass tops them up to this many.
const backfillBatch = 10

// backfillStreaming enqueues the streaming jobs of up to batch videos
// without any (fewer when backfilled ones still wait). It is
// idempotent: a video is chosen only while no transcode job of its is
// known to River (waiting, running, or finished and not yet cleaned
// away), and its jobs are unique by video and kind besides. A process
// without the media tools backfills nothing.
func (s *Service) backfillStreaming(ctx context.Context, batch int) error {
	if s.tools == nil || s.cfg.noStreamingJobs {
		return nil
	}
	waiting, err := s.store.waitingJobs(ctx, KindTranscode, priorityBackfill)
	if err != nil {
		return err
	}
	if waiting >= batch {
		return nil
	}
	rs, err := s.store.unstreamed(ctx, KindTranscode, batch-waiting)
	if err != nil {
		return err
	}
	var errsOut []error
	for _, r := range rs {
		plan, err := s.planFair(ctx, r.OwnerID)
		if err != nil {
			errsOut = append(errsOut, fmt.Errorf("backfill video %s: %w", r.ID, err))
			continue
		}
		err = s.db.Tx(ctx, func(tx *sql.Tx) error {
			return s.enqueueAtTx(ctx, tx, r, priorityBackfill, plan, KindTranscode, KindStoryboard)
		})
		if err != nil {
			errsOut = append(errsOut, fmt.Errorf("backfill video %s: %w", r.ID, err))
		}
	}
	if len(rs) > 0 {
		s.log.Info("streaming backfill: jobs enqueued", "videos", len(rs)-len(errsOut))
	}
	return errors.Join(errsOut...)
}

// waitingJobs counts the jobs of kind at priority that wait or run.
// River's own table; both engines keep it in the videos database.
func (s *store) waitingJobs(ctx context.Context, kind string, priority int) (int, error) {
	var n int
	err := s.db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM river_job WHERE kind = $1 AND priority = $2
AND state IN ('available', 'pending', 'retryable', 'running', 'scheduled')`, kind, priority).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count waiting %s jobs: %w", kind, err)
	}
	return n, nil
}

// unstreamed lists up to limit live, charged videos whose ladder never
// started (streaming_state pending) and for which River knows no job of
// kind, oldest first. A job's metadata names its video (jobMeta); ->>
// reads it alike on both engines.
func (s *store) unstreamed(ctx context.Context, kind string, limit int) ([]record, error) {
	return s.list(ctx, "videos without streaming jobs", fmt.Sprintf(`SELECT `+videoCols+` FROM videos
WHERE status = 'ready' AND deleted_at IS NULL AND quota_state = 'charged' AND streaming_state = 'pending'
AND NOT EXISTS (SELECT 1 FROM river_job j WHERE j.kind = $1 AND j.metadata ->> 'video_id' = videos.id)
ORDER BY created_at, id LIMIT %d`, limit), kind)
}
