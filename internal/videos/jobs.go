package videos

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/reel-video/reel/internal/media"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// The videos service's work that nobody waits for runs as jobs on River
// (internal/platform/queue, docs/decisions/0007-job-queue-river.md), in the
// videos database: posters, the periodic maintenance and, later,
// transcodes. A job about a video is inserted in the transaction that
// calls for it (finalise marking the video ready, a restore), so a
// rolled-back change leaves no job and a committed one cannot lose it.

// Queues. Each process that works jobs runs each queue with its own
// number of workers (WorkerConfig).
const (
	queuePoster    = "poster"
	queueTranscode = "transcode"
	// queueRemux runs the first renditions that are likely remuxes (the
	// source's streams copied: seconds of I/O and little CPU), so that a
	// fast start never waits for encodes to end (remuxFirst).
	queueRemux       = "remux"
	queueMaintenance = "maintenance"
)

// Job kinds.
const (
	KindPoster      = "poster"
	KindMaintenance = "videos_maintenance"
	KindPurge       = "videos_purge"
	KindCheck       = "videos_check"
)

// kindSpec is how jobs of a kind about one video are inserted. A new kind
// of job about a video is an entry here and a worker in newQueue.
type kindSpec struct {
	args     func(videoID string) river.JobArgs
	queue    string
	priority int // 1 runs first
	attempts int
	// fairStep spaces one owner's waiting jobs of the kind (planFair).
	fairStep time.Duration
}

var videoKinds = map[string]kindSpec{
	KindPoster: {
		args:  func(id string) river.JobArgs { return posterArgs{VideoID: id} },
		queue: queuePoster, priority: 1, attempts: 3, fairStep: 2 * time.Second,
	},
	// The first rendition; the job enqueues the rest of the ladder
	// (jobs_streaming.go) once it is done.
	KindTranscode: {
		args:  func(id string) river.JobArgs { return TranscodeArgs{VideoID: id, Stage: StageFirst} },
		queue: queueTranscode, priority: priorityFirst, attempts: transcodeAttempts, fairStep: 2 * time.Second,
	},
	KindStoryboard: {
		args:  func(id string) river.JobArgs { return StoryboardArgs{VideoID: id} },
		queue: queueTranscode, priority: priorityStoryboard, attempts: storyboardAttempts, fairStep: 10 * time.Second,
	},
}

// unfinished are the states of a job still to run or running. A video has
// at most one job of a kind in them (uniqueStates), so a finished job
// (completed, cancelled, discarded) does not stop a new one: a restored
// video gets its poster job again.
var (
	unfinished   = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable, rivertype.JobStateRunning, rivertype.JobStateScheduled}
	uniqueStates = unfinished
)

// videoArgs are the arguments of a job about one video.
type videoArgs struct {
	VideoID string `json:"video_id"`
}

type posterArgs videoArgs

func (posterArgs) Kind() string { return KindPoster }

// videoTag tags a video's jobs, so that they can be listed and cancelled.
// River allows only word characters and hyphens in a tag, hence no colon.
func videoTag(id string) string { return "video-" + id }

// jobMeta is the metadata reel stores with a job about a video.
type jobMeta struct {
	VideoID string `json:"video_id"`
	OwnerID string `json:"owner_id,omitempty"`
	// DurationSeconds is the video's, which bounds a streaming job's
	// attempt (jobs_rescue.go).
	DurationSeconds float64 `json:"duration_seconds,omitempty"`
}

// enqueueTx inserts jobs of kinds about video v in tx, one statement for
// them all, except a kind the video has a job of already waiting or
// running, each at the time plan gives its kind (at once when it gives
// none).
func (s *Service) enqueueTx(ctx context.Context, tx *sql.Tx, v record, plan fairPlan, kinds ...string) error {
	return s.enqueueAtTx(ctx, tx, v, 0, plan, kinds...)
}

// enqueueAtTx is enqueueTx at priority instead of each kind's own (zero:
// the kind's), for the backfill (priorityBackfill).
func (s *Service) enqueueAtTx(ctx context.Context, tx *sql.Tx, v record, priority int, plan fairPlan, kinds ...string) error {
	if len(kinds) == 0 {
		return nil
	}
	meta, err := json.Marshal(jobMeta{VideoID: v.ID, OwnerID: v.OwnerID, DurationSeconds: v.DurationSeconds})
	if err != nil {
		return err
	}
	params := make([]river.InsertManyParams, len(kinds))
	for i, kind := range kinds {
		spec, ok := videoKinds[kind]
		if !ok {
			return fmt.Errorf("enqueue: unknown job kind %q", kind)
		}
		pri := priority
		if pri == 0 {
			pri = spec.priority
		}
		queue := spec.queue
		if kind == KindTranscode && remuxFirst(v) {
			queue = queueRemux
		}
		params[i] = river.InsertManyParams{Args: spec.args(v.ID), InsertOpts: &river.InsertOpts{
			Queue: queue, Priority: pri, MaxAttempts: spec.attempts, ScheduledAt: plan[kind],
			Tags: []string{videoTag(v.ID)}, Metadata: meta,
			UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: uniqueStates},
		}}
	}
	if _, err := s.jobs.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("enqueue %s jobs: %w", strings.Join(kinds, ", "), err)
	}
	return nil
}

// remuxFirst reports whether v's first rendition is likely a remux, by the
// codecs its upload's probe found: such a job goes to queueRemux. The job
// decides (media.Source.FastStart, from the streams' format and
// keyframes); one that finds it must encode does so in that queue, which
// for that time has one worker fewer for remuxes.
func remuxFirst(v record) bool { return media.MayRemux(v.VideoCodec, v.AudioCodec) }

// enqueue inserts a job in a transaction of its own.
func (s *Service) enqueue(ctx context.Context, kind string, v record) error {
	plan, err := s.planFair(ctx, v.OwnerID)
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error { return s.enqueueTx(ctx, tx, v, plan, kind) })
}

// fairPlan is when one owner's next job of each kind may run (planFair);
// a kind it leaves out runs at once.
type fairPlan map[string]time.Time

// fairKinds are the kinds spaced by fair queueing, and the placeholders
// of their names after the owner's ($1) in planFair's query.
var fairKinds, fairKindsIn = func() ([]any, string) {
	var ks []any
	for kind, spec := range videoKinds {
		if spec.fairStep > 0 {
			ks = append(ks, kind)
		}
	}
	return ks, placeholders(2, len(ks))
}()

// fairCountSQL counts one owner's waiting jobs by kind, in River's own
// table (->> reads the JSON metadata alike on both engines). Its state
// list is the words of the partial index made for it
// (queue_migrations), which it must keep for the index to apply.
var fairCountSQL = `SELECT kind, COUNT(*) FROM river_job WHERE kind IN (` + fairKindsIn + `)
AND state IN ('available', 'pending', 'retryable', 'scheduled') AND metadata ->> 'owner_id' = $1 GROUP BY kind`

// planFair is fair queueing: a job of a kind for owner runs at once if
// the owner has no job of that kind waiting, else after the kind's step
// for each one waiting. So one user's hundred uploads are spaced out while
// another user's first job runs at once, ahead of all but the first of
// them. The times are River's (the wall clock), not the service's.
//
// It is one query on the read pool, made before the transaction that
// inserts the jobs so that the transaction (an upload's finalisation)
// holds its write connection no longer for it. Two transactions of one
// owner at once may then both count the other's job out and get the same
// time: fair queueing spaces the jobs, it does not order them.
func (s *Service) planFair(ctx context.Context, owner string) (fairPlan, error) {
	if s.cfg.FairStep < 0 || len(fairKinds) == 0 {
		return nil, nil
	}
	rows, err := s.db.R.QueryContext(ctx, fairCountSQL, append([]any{owner}, fairKinds...)...)
	if err != nil {
		return nil, fmt.Errorf("count waiting jobs: %w", err)
	}
	defer rows.Close()
	now := time.Now()
	plan := fairPlan{}
	for rows.Next() {
		var kind string
		var waiting int64
		if err := rows.Scan(&kind, &waiting); err != nil {
			return nil, fmt.Errorf("count waiting jobs: %w", err)
		}
		step := videoKinds[kind].fairStep
		if s.cfg.FairStep > 0 {
			step = s.cfg.FairStep
		}
		plan[kind] = now.Add(time.Duration(waiting) * step)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count waiting jobs: %w", err)
	}
	return plan, nil
}

// cancelBatch is how many videos' jobs are cancelled in one statement.
const cancelBatch = 100

// cancelVideoJobs cancels the unfinished jobs of videos that went to the
// trash: a waiting one never runs; a running one is marked as River marks
// a job it is asked to cancel, so that River stops it when it next polls
// for cancellations (and never rescues it), and its watchdog (watch)
// stops it within watchInterval in any case, whichever replica runs it.
// It runs after the trash has committed; should it fail or the process
// stop first, each job finds its video in the trash and does nothing.
//
// It is one statement for up to cancelBatch videos, on the queue's pool,
// where River's own JobCancel is a statement per job: a delete-all of a
// user's hundred videos made hundreds.
func (s *Service) cancelVideoJobs(ctx context.Context, ids ...string) {
	at, err := time.Now().UTC().MarshalJSON()
	if err != nil {
		return // cannot fail for the current time
	}
	for len(ids) > 0 {
		n := min(len(ids), cancelBatch)
		args := make([]any, 0, n+1)
		args = append(args, string(at[1:len(at)-1])) // the time without its JSON quotes
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		ids = ids[n:]
		if _, err := s.db.Q.ExecContext(ctx, s.cancelJobsSQL(n), args...); err != nil {
			s.log.Warn("cancel the jobs of trashed videos", "err", err)
			return
		}
	}
}

// cancelJobsSQL cancels the unfinished jobs of any of the n videos $2…:
// River's JobCancel for each (its own SQL, river_job being its table),
// where only the JSON functions differ. The jobs are found by the video id
// of their metadata (jobMeta), through the partial index made for it
// (queue_migrations), whose state list the query must keep for it to
// apply.
func (s *Service) cancelJobsSQL(n int) string {
	now, meta := "now()", "jsonb_set(metadata, '{cancel_attempted_at}', to_jsonb($1::text), true)"
	if s.db.Dialect == sqldb.SQLite {
		now, meta = "datetime('now', 'subsec')", "jsonb_set(metadata, '$.cancel_attempted_at', $1)"
	}
	return `UPDATE river_job SET
state = CASE WHEN state = 'running' THEN state ELSE 'cancelled' END,
finalized_at = CASE WHEN state = 'running' THEN finalized_at ELSE ` + now + ` END,
metadata = ` + meta + `
WHERE state IN ('available', 'pending', 'retryable', 'running', 'scheduled') AND metadata ->> 'video_id' IN (` + placeholders(2, n) + `)`
}

// requeueTx enqueues in tx what a restored video is missing: its poster,
// unless it went without one, and its streaming files (a job that finds
// its work done returns at once).
func (s *Service) requeueTx(ctx context.Context, tx *sql.Tx, r record, plan fairPlan) error {
	var kinds []string
	if r.PosterKey == "" && !r.PosterNone {
		kinds = append(kinds, KindPoster)
	}
	return s.enqueueTx(ctx, tx, r, plan, append(kinds, s.streamingKinds()...)...)
}

// sweepBatch bounds the videos one maintenance pass gives a missing job.
const sweepBatch = 100

// enqueueMissing gives a poster job to live videos that wait for a poster
// but have none waiting or running: videos the previous release marked
// due during a rolling upgrade, and a video restored while the job its
// trash cancelled was still running (the restore's insert was then a
// duplicate of that job).
func (s *Service) enqueueMissing(ctx context.Context) error {
	rs, err := s.store.postersMissing(ctx, sweepBatch)
	if err != nil {
		return err
	}
	var errsOut []error
	for _, r := range rs {
		res, err := s.jobs.JobList(ctx, river.NewJobListParams().Kinds(KindPoster).States(unfinished...).TagsAll(videoTag(r.ID)).First(1))
		if err != nil {
			return fmt.Errorf("list a video's poster jobs: %w", err)
		}
		if len(res.Jobs) > 0 {
			continue
		}
		if err := s.enqueue(ctx, KindPoster, r); err != nil {
			errsOut = append(errsOut, err)
		}
	}
	return errors.Join(errsOut...)
}

// watchInterval is how often a running job checks that its video is still
// live.
const watchInterval = 500 * time.Millisecond

// errVideoGone is the cause of a job's context cancelled by its watchdog.
var errVideoGone = errors.New("the video went to the trash")

// watch returns ctx, cancelled with cause errVideoGone as soon as video id
// is no longer live (trashed or purged, by any replica): checked every
// watchInterval while the job runs, so ffmpeg is stopped within about
// that long, whichever replica runs it and whatever River's own
// cancellation takes to arrive.
func (s *Service) watch(ctx context.Context, id string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(watchInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if live, err := s.store.live(ctx, id); err == nil && !live {
					cancel(errVideoGone)
					return
				}
			}
		}
	}()
	return ctx, func() {
		close(done)
		cancel(nil)
	}
}

// A job's error is what River records and admins read in the jobs API, so
// its text is one of reel's own short messages; the cause stays in the
// log. jobMessages lists them: the API shows any other text (a panic's,
// one of River's) as msgFailed.
const (
	msgFailed    = "the job failed; the server log has the details"
	msgReadVideo = "could not read the video's record"
	msgSource    = "could not read the video's bytes"
	msgCut       = "ffmpeg could not cut the poster"
	msgStore     = "could not store the poster"
	msgCharge    = "could not charge the poster to the storage quota"
	msgAttach    = "could not attach the poster to its video"
	msgVideoGone = "the video went to the trash"
	msgCancelled = "cancelled"
	msgMaintain  = "the maintenance pass failed"
	msgPurge     = "the purge failed"
	msgCheck     = "the consistency check failed"
)

var jobMessages = map[string]string{
	msgReadVideo: msgReadVideo, msgSource: msgSource, msgCut: msgCut, msgStore: msgStore, msgCharge: msgCharge,
	msgAttach: msgAttach, msgVideoGone: msgVideoGone, msgCancelled: msgCancelled, msgMaintain: msgMaintain,
	msgPurge: msgPurge, msgCheck: msgCheck,
	// River's own, when a job is cancelled while it runs.
	strings.TrimPrefix(river.ErrJobCancelledRemotely.Error(), "JobCancelError: "): msgCancelled,
}

// jobError is a job's failure: msg for River and admins, err for the log.
type jobError struct {
	msg string
	err error
}

func (e *jobError) Error() string { return e.msg }
func (e *jobError) Unwrap() error { return e.err }

// failed wraps err with a safe message, keeping the first one given.
func failed(msg string, err error) error {
	var je *jobError
	if errors.As(err, &je) {
		return err
	}
	return &jobError{msg: msg, err: err}
}

// causeOf is the cause of a job's error, for the log.
func causeOf(err error) error {
	var je *jobError
	if errors.As(err, &je) && je.err != nil {
		return je.err
	}
	return err
}
