package videos

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/riverqueue/river"
)

// The queue's side of adaptive streaming: the job kinds, their workers
// and how they are enqueued. The work itself is Transcode and Storyboard.
//
// A ready video gets a transcode job of stage first (priority 1) and a
// storyboard job (priority 3), inserted in the transaction that makes it
// ready or restores it (enqueueStreaming). The first job, once done,
// enqueues the rest (priority 2), so the ladder follows its first rung
// instead of competing with it. Every job is unique by its arguments
// while it waits or runs, and carries its video's id in its metadata and
// a video_<id> tag, by which a trash finds and cancels the video's jobs.

// Job kinds of adaptive streaming.
const (
	KindTranscode  = "transcode"
	KindStoryboard = "storyboard"
)

// Priorities of the jobs (1 runs first; River has four).
const (
	priorityFirst      = 1
	priorityRest       = 2
	priorityStoryboard = 3
	// priorityBackfill is every streaming job of a video that never had
	// any (backfill.go): after all of every fresh upload's.
	priorityBackfill = 4
)

const (
	// transcodeAttempts and storyboardAttempts bound the attempts of a
	// job whose failures may pass (storage down, a killed process).
	transcodeAttempts  = 5
	storyboardAttempts = 5
	// transcodeTimeout bounds a transcode job of a video whose duration
	// is unknown; others get streamingTimeout (jobs_rescue.go).
	transcodeTimeout = 6 * time.Hour
	// storyboardTimeout is the same for a storyboard job, which decodes
	// the smallest rendition.
	storyboardTimeout = time.Hour
)

// TranscodeArgs are a transcode job's arguments: a video and the stage of
// its ladder to make.
type TranscodeArgs struct {
	VideoID string `json:"video_id"`
	Stage   Stage  `json:"stage"`
}

// Kind implements river.JobArgs.
func (TranscodeArgs) Kind() string { return KindTranscode }

// StoryboardArgs are a storyboard job's arguments.
type StoryboardArgs struct {
	VideoID string `json:"video_id"`
}

// Kind implements river.JobArgs.
func (StoryboardArgs) Kind() string { return KindStoryboard }

// restOpts are the insert options of the rest of a video's ladder: after
// its first rendition, at the ladder's priority or, when the first was
// backfilled (a lower priority: a higher number), at the first's.
func restOpts(videoID string, firstPriority int, duration float64) *river.InsertOpts {
	meta, _ := json.Marshal(jobMeta{VideoID: videoID, DurationSeconds: duration}) // cannot fail
	return &river.InsertOpts{
		Metadata: meta,
		Queue:    queueTranscode, Priority: max(priorityRest, firstPriority), MaxAttempts: transcodeAttempts, Tags: []string{videoTag(videoID)},
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: uniqueStates},
	}
}

// streamingKinds are the jobs that make a video's streaming files (its
// first rendition, then its storyboard), enqueued in the transaction that
// makes the video ready and in the one that restores it. A process
// without the media tools (no ffmpeg) enqueues none.
func (s *Service) streamingKinds() []string {
	if s.tools == nil || s.cfg.noStreamingJobs {
		return nil
	}
	return []string{KindTranscode, KindStoryboard}
}

// TranscodeWorker works transcode jobs.
type TranscodeWorker struct {
	river.WorkerDefaults[TranscodeArgs]
	svc *Service
}

// NewTranscodeWorker returns the worker of transcode jobs, to register
// with river.AddWorker.
func NewTranscodeWorker(svc *Service) *TranscodeWorker { return &TranscodeWorker{svc: svc} }

// Timeout implements river.Worker: the video's duration bounds the job,
// and a job whose process stopped beating is let go (jobs_rescue.go).
func (w *TranscodeWorker) Timeout(job *river.Job[TranscodeArgs]) time.Duration {
	return w.svc.liveTimeout(job.JobRow, streamingTimeout(videoDuration(job.JobRow), transcodeTimeout))
}

// Work implements river.Worker. Once the first rung is done it enqueues
// the rest; a job that cannot succeed is cancelled rather than retried.
func (w *TranscodeWorker) Work(ctx context.Context, job *river.Job[TranscodeArgs]) error {
	id := job.Args.VideoID
	defer w.svc.beat(ctx, job.JobRow)()
	err := w.svc.Transcode(ctx, id, job.Args.Stage)
	if err == nil && job.Args.Stage == StageFirst {
		client, cerr := river.ClientFromContextSafely[*sql.Tx](ctx)
		if cerr != nil {
			return cerr
		}
		// Inserted after the first rung is recorded: if this fails, the
		// job is retried, finds its rung done and inserts again.
		_, err = client.Insert(ctx, TranscodeArgs{VideoID: id, Stage: StageRest}, restOpts(id, job.Priority, videoDuration(job.JobRow)))
	}
	return w.svc.jobOutcome(ctx, job.Attempt, job.MaxAttempts, id, err, true)
}

// StoryboardWorker works storyboard jobs.
type StoryboardWorker struct {
	river.WorkerDefaults[StoryboardArgs]
	svc *Service
}

// NewStoryboardWorker returns the worker of storyboard jobs, to register
// with river.AddWorker.
func NewStoryboardWorker(svc *Service) *StoryboardWorker { return &StoryboardWorker{svc: svc} }

// Timeout implements river.Worker, as TranscodeWorker's does.
func (w *StoryboardWorker) Timeout(job *river.Job[StoryboardArgs]) time.Duration {
	return w.svc.liveTimeout(job.JobRow, streamingTimeout(videoDuration(job.JobRow), storyboardTimeout))
}

// Work implements river.Worker.
func (w *StoryboardWorker) Work(ctx context.Context, job *river.Job[StoryboardArgs]) error {
	defer w.svc.beat(ctx, job.JobRow)()
	err := w.svc.Storyboard(ctx, job.Args.VideoID)
	return w.svc.jobOutcome(ctx, job.Attempt, job.MaxAttempts, job.Args.VideoID, err, false)
}

// jobOutcome maps a job's error to what the queue should do: a video gone
// or trashed, or a source that cannot be streamed, cancels the job (a
// restore enqueues a trashed video's jobs again); any other error is
// retried, and a ladder whose last attempt fails is recorded failed.
func (s *Service) jobOutcome(ctx context.Context, attempt, maxAttempts int, id string, err error, ladder bool) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrVideoNotFound), errors.Is(err, errVideoGone), errors.Is(err, errUnstreamable):
		return river.JobCancel(err)
	case ladder && attempt >= maxAttempts:
		s.streamingFailed(ctx, id, err)
	}
	return err
}
