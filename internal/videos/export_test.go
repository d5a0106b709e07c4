package videos

import (
	"context"
	"database/sql"

	"github.com/reel-video/reel/internal/platform/queue"
	"github.com/riverqueue/river"
)

// SetSpoolSpace replaces how the service reads the spool's free and total
// bytes.
func (s *Service) SetSpoolSpace(f func(dir string) (free, total uint64, err error)) { s.spoolSpace = f }

// Queue is the service's River client.
func (s *Service) Queue() *queue.Client { return s.jobs }

// WithoutPeriodicJobs leaves the periodic maintenance jobs out: tests run
// Maintain and Purge themselves, with their own clock.
func WithoutPeriodicJobs(c *Config) { c.noPeriodic = true }

// EnqueueStreaming enqueues a video's streaming jobs in tx, as finalise
// and restore do (also where the test env leaves them out of uploads).
func (s *Service) EnqueueStreaming(ctx context.Context, tx *sql.Tx, id string) error {
	r, err := s.store.video(ctx, tx, id)
	if err != nil {
		return err
	}
	cfg := s.cfg
	s.cfg.noStreamingJobs = false
	defer func() { s.cfg = cfg }()
	plan, err := s.planFair(ctx, r.OwnerID)
	if err != nil {
		return err
	}
	return s.enqueueTx(ctx, tx, r, plan, s.streamingKinds()...)
}

// VideoTag is the tag of a video's jobs.
var VideoTag = videoTag

// WithoutStreamingJobs enqueues no streaming jobs on upload and restore.
func WithoutStreamingJobs(c *Config) { c.noStreamingJobs = true }

// ErrGone is what Transcode and Storyboard return for a video that went
// to the trash while they worked.
var ErrGone = errVideoGone

// BackfillStreaming runs the maintenance pass's streaming backfill with
// batch in place of backfillBatch, as a service that enqueues streaming
// jobs (also where the test env leaves them out of uploads).
func (s *Service) BackfillStreaming(ctx context.Context, batch int) error {
	cfg := s.cfg
	s.cfg.noStreamingJobs = false
	defer func() { s.cfg = cfg }()
	return s.backfillStreaming(ctx, batch)
}

// EnqueueCheck inserts a periodic check job, as River's leader does.
func (s *Service) EnqueueCheck(ctx context.Context) error {
	_, err := s.jobs.Insert(ctx, checkArgs{}, &river.InsertOpts{Queue: queueMaintenance, MaxAttempts: 1})
	return err
}
