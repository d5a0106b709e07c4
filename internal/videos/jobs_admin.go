package videos

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Errors of the jobs API.
var (
	ErrJobNotFound = errs.New(errs.NotFound, "job_not_found", "no such job")
	ErrJobRunning  = errs.New(errs.Conflict, "job_running", "the job is running; cancel it or wait for it to finish")
	ErrJobConflict = errs.New(errs.Conflict, "job_conflict", "the video has another job of this kind waiting or running")
)

// Job is a job as admins see it.
type Job struct {
	ID          int64      `json:"id"`
	Kind        string     `json:"kind"`
	State       string     `json:"state"`
	VideoID     *string    `json:"video_id"`
	Attempt     int        `json:"attempt"`
	MaxAttempts int        `json:"max_attempts"`
	Priority    int        `json:"priority"`
	Queue       string     `json:"queue"`
	CreatedAt   time.Time  `json:"created_at"`
	ScheduledAt time.Time  `json:"scheduled_at"`
	AttemptedAt *time.Time `json:"attempted_at"`
	FinalizedAt *time.Time `json:"finalized_at"`
	Errors      []JobError `json:"errors"`
}

// JobError is one failed attempt of a job.
type JobError struct {
	At      time.Time `json:"at"`
	Attempt int       `json:"attempt"`
	Error   string    `json:"error"`
}

// JobFilter narrows a listing of jobs; empty fields do not filter.
type JobFilter struct {
	State, Kind, VideoID string
}

var kindPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

func (f JobFilter) params() (*river.JobListParams, error) {
	p := river.NewJobListParams()
	bad := map[string]string{}
	if f.State != "" {
		st := rivertype.JobState(f.State)
		if !slices.Contains(rivertype.JobStates(), st) {
			states := make([]string, 0, 8)
			for _, s := range rivertype.JobStates() {
				states = append(states, string(s))
			}
			bad["state"] = "must be one of " + strings.Join(states, ", ")
		}
		p = p.States(st)
	}
	if f.Kind != "" {
		if !kindPattern.MatchString(f.Kind) {
			bad["kind"] = "must be a job kind such as " + KindPoster
		}
		p = p.Kinds(f.Kind)
	}
	if f.VideoID != "" {
		if !validID(f.VideoID) {
			bad["video_id"] = "must be a video id (a UUID)"
		}
		p = p.TagsAll(videoTag(f.VideoID))
	}
	if len(bad) > 0 {
		return nil, ErrValidation.WithFields(bad)
	}
	return p, nil
}

// Jobs lists jobs, newest first, for an admin.
func (s *Service) Jobs(ctx context.Context, c authn.Caller, f JobFilter, req page.Request) (page.Page[Job], error) {
	if !c.IsAdmin() {
		return page.Page[Job]{}, errs.ErrForbidden
	}
	p, err := f.params()
	if err != nil {
		return page.Page[Job]{}, err
	}
	p = p.OrderBy(river.JobListOrderByID, river.SortOrderDesc).First(req.Limit + 1)
	if !req.After.Zero() {
		p = p.Where("id < @before_id", river.NamedArgs{"before_id": req.After.T})
	}
	res, err := s.jobs.JobList(ctx, p)
	if err != nil {
		return page.Page[Job]{}, fmt.Errorf("list jobs: %w", err)
	}
	items := make([]Job, len(res.Jobs))
	for i, j := range res.Jobs {
		items[i] = jobView(j)
	}
	return page.Make(items, req.Limit, func(j Job) page.Cursor {
		return page.Cursor{T: j.ID, ID: strconv.FormatInt(j.ID, 10)}
	}), nil
}

// RetryJob makes a job that is not running available to run again at
// once (another attempt for one that used up its attempts). Retrying a
// poster job lets a video that went without a poster have one after all.
func (s *Service) RetryJob(ctx context.Context, c authn.Caller, id string) (Job, error) {
	j, err := s.adminJob(ctx, c, id)
	if err != nil {
		return Job{}, err
	}
	if j.State == rivertype.JobStateRunning {
		return Job{}, ErrJobRunning
	}
	var out *rivertype.JobRow
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if video, ok := jobVideo(j); ok && j.Kind == KindPoster {
			if err := s.store.setPosterNone(ctx, tx, video, false); err != nil {
				return err
			}
		}
		var err error
		out, err = s.jobs.JobRetryTx(ctx, tx, j.ID)
		return err
	})
	if sqldb.IsUniqueViolation(err) {
		return Job{}, ErrJobConflict
	}
	if err != nil {
		return Job{}, fmt.Errorf("retry job: %w", err)
	}
	s.log.Info("job retried by an admin", "job_id", j.ID, "kind", j.Kind, "admin", c.UserID)
	return jobView(out), nil
}

// CancelJob cancels a job: a waiting one never runs, a running one has
// its context cancelled. A finished job is answered as it is. A video
// whose poster job an admin cancels goes without a poster (a restore or
// the maintenance job would otherwise enqueue it again), and one whose
// transcode job an admin cancels has its ladder failed, the rungs done
// staying playable (else the maintenance job's backfill would enqueue a
// video still pending again; a restore still does).
func (s *Service) CancelJob(ctx context.Context, c authn.Caller, id string) (Job, error) {
	j, err := s.adminJob(ctx, c, id)
	if err != nil {
		return Job{}, err
	}
	if slices.Contains(unfinished, j.State) {
		video, ok := jobVideo(j)
		switch {
		case ok && j.Kind == KindPoster:
			if err := s.store.setPosterNone(ctx, s.db.W, video, true); err != nil {
				return Job{}, fmt.Errorf("cancel job: %w", err)
			}
		case ok && j.Kind == KindTranscode:
			err := s.store.failStreaming(ctx, s.db.W, video)
			s.changed(video)
			if err != nil {
				return Job{}, fmt.Errorf("cancel job: %w", err)
			}
		}
	}
	out, err := s.jobs.JobCancel(ctx, j.ID)
	if errors.Is(err, river.ErrNotFound) {
		return Job{}, ErrJobNotFound
	}
	if err != nil {
		return Job{}, fmt.Errorf("cancel job: %w", err)
	}
	s.log.Info("job cancelled by an admin", "job_id", j.ID, "kind", j.Kind, "admin", c.UserID)
	return jobView(out), nil
}

// adminJob reads a job for an admin.
func (s *Service) adminJob(ctx context.Context, c authn.Caller, id string) (*rivertype.JobRow, error) {
	if !c.IsAdmin() {
		return nil, errs.ErrForbidden
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return nil, ErrJobNotFound
	}
	j, err := s.jobs.JobGet(ctx, n)
	if errors.Is(err, river.ErrNotFound) {
		return nil, ErrJobNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read job: %w", err)
	}
	return j, nil
}

// jobVideo is the video a job is about, from its tag.
func jobVideo(j *rivertype.JobRow) (string, bool) {
	for _, t := range j.Tags {
		if id, ok := strings.CutPrefix(t, "video-"); ok && validID(id) {
			return id, true
		}
	}
	return "", false
}

func jobView(j *rivertype.JobRow) Job {
	v := Job{
		ID: j.ID, Kind: j.Kind, State: string(j.State), Attempt: j.Attempt, MaxAttempts: j.MaxAttempts,
		Priority: j.Priority, Queue: j.Queue, CreatedAt: j.CreatedAt.UTC(), ScheduledAt: j.ScheduledAt.UTC(),
		AttemptedAt: utcPtr(j.AttemptedAt), FinalizedAt: utcPtr(j.FinalizedAt), Errors: make([]JobError, len(j.Errors)),
	}
	if id, ok := jobVideo(j); ok {
		v.VideoID = &id
	}
	for i, e := range j.Errors {
		// River prefixes the text of a job that cancelled itself.
		msg, ok := jobMessages[strings.TrimPrefix(e.Error, "JobCancelError: ")]
		if !ok {
			msg = msgFailed
		}
		v.Errors[i] = JobError{At: e.At.UTC(), Attempt: e.Attempt, Error: msg}
	}
	return v
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
