package videos

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/reel-video/reel/internal/platform/queue"
)

// WorkerConfig says that a process works the videos service's jobs, and
// how many at once.
type WorkerConfig struct {
	// Transcode is how many jobs of the transcode queue run at once
	// (default DefaultTranscodeWorkers).
	Transcode int
	// Posters is how many poster jobs run at once (default 8: the Prober cuts
	// concurrent posters in one ffmpeg run).
	Posters int
	// PollInterval is how often idle workers look for jobs other
	// processes inserted (default one second).
	PollInterval time.Duration
	// StopGrace is how long a stopping process lets running jobs finish
	// before it cancels them (default 10 s).
	StopGrace time.Duration
	// Heartbeat is how often a running streaming job says its process
	// lives; after three missed the queue runs it again elsewhere
	// (jobs_rescue.go; default 10 s). Every process of one queue should
	// use the same.
	Heartbeat time.Duration
}

// DefaultTranscodeWorkers is one transcode at a time per two cores, at
// least one.
func DefaultTranscodeWorkers() int { return max(1, runtime.NumCPU()/2) }

// remuxWorkers is how many first renditions of the remux queue run at
// once: copies, which cost little CPU beside the encodes.
const remuxWorkers = 2

// How often the periodic jobs run. Maintenance is cheap when there is
// nothing to do, and runs at least once a reservation lease (maintainEvery)
// so that a dead process's finalising upload is undone soon after its
// lease lapses; the purge works in days.
const (
	maintainAtMost = time.Minute
	purgeEvery     = 10 * time.Minute
	// maintenanceTimeout bounds one pass of either.
	maintenanceTimeout = 10 * time.Minute
	// checkTimeout bounds one periodic check; maxLoggedFindings bounds
	// the lines it logs.
	checkTimeout      = time.Hour
	maxLoggedFindings = 100
	// stopGrace is the default WorkerConfig.StopGrace.
	stopGrace = 10 * time.Second
)

// newQueue makes the service's River client: one that works the jobs
// when wc is set, else one that only inserts and manages them.
func (s *Service) newQueue(wc *WorkerConfig) error {
	qc := queue.Config{Logger: s.log}
	if wc != nil {
		ws := river.NewWorkers()
		river.AddWorker(ws, &posterWorker{svc: s})
		river.AddWorker(ws, &maintenanceWorker{svc: s})
		river.AddWorker(ws, &purgeWorker{svc: s})
		river.AddWorker(ws, &checkWorker{svc: s})
		river.AddWorker(ws, NewTranscodeWorker(s))
		river.AddWorker(ws, NewStoryboardWorker(s))
		qc = queue.Config{
			Workers: ws,
			Queues: map[string]int{
				queuePoster:      cmpOr(wc.Posters, posterWorkers),
				queueTranscode:   cmpOr(wc.Transcode, DefaultTranscodeWorkers()),
				queueRemux:       remuxWorkers,
				queueMaintenance: 1,
			},
			Periodic:     s.periodicJobs(),
			PollInterval: wc.PollInterval,
			// Each kind's Timeout decides when its job is rescued; a
			// streaming job's answers by its heartbeat (jobs_rescue.go).
			RescueAfter: rescueAfterFor(cmp.Or(wc.Heartbeat, defaultHeartbeat)),
			Logger:      s.log,
		}
	}
	c, err := queue.New(s.db, qc)
	if err != nil {
		return err
	}
	s.jobs, s.working = c, wc != nil
	if wc != nil && wc.StopGrace > 0 {
		s.stopGrace = wc.StopGrace
	}
	return nil
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// maintainEvery is the maintenance's period: a lease, within a second and
// a minute.
func (s *Service) maintainEvery() time.Duration {
	return min(maintainAtMost, max(time.Second, s.cfg.ReserveLease))
}

// periodicJobs are the service's maintenance, as River periodic jobs.
// Only River's elected leader enqueues them, at start and then every
// period, and a job already waiting or running makes the next insert a
// duplicate: each runs once at a time across every replica. One attempt
// each: the next period is the retry.
func (s *Service) periodicJobs() []*river.PeriodicJob {
	if s.cfg.noPeriodic {
		return nil
	}
	opts := &river.InsertOpts{Queue: queueMaintenance, Priority: 4, MaxAttempts: 1,
		UniqueOpts: river.UniqueOpts{ByState: uniqueStates}}
	jobs := []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(s.maintainEvery()),
			func() (river.JobArgs, *river.InsertOpts) { return maintenanceArgs{}, opts },
			&river.PeriodicJobOpts{ID: KindMaintenance, RunOnStart: true}),
		river.NewPeriodicJob(river.PeriodicInterval(purgeEvery),
			func() (river.JobArgs, *river.InsertOpts) { return purgeArgs{}, opts },
			&river.PeriodicJobOpts{ID: KindPurge, RunOnStart: true}),
	}
	if s.cfg.CheckEvery > 0 {
		jobs = append(jobs, river.NewPeriodicJob(river.PeriodicInterval(s.cfg.CheckEvery),
			func() (river.JobArgs, *river.InsertOpts) { return checkArgs{}, opts },
			&river.PeriodicJobOpts{ID: KindCheck, RunOnStart: true}))
	}
	return jobs
}

// RunJobs works the service's jobs until ctx ends, in a process that
// works them (Config.Workers); elsewhere it returns at once. Stopping, it
// lets running jobs finish for WorkerConfig.StopGrace, then cancels them:
// a poster cut off so is taken again at once by the next process, its
// attempt not counted.
func (s *Service) RunJobs(ctx context.Context) error {
	if !s.working {
		return nil
	}
	if err := s.jobs.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start the job queue: %w", err)
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), s.stopGrace)
	defer cancel()
	if err := s.jobs.Stop(sctx); err == nil {
		return nil
	}
	s.stopping.Store(true)
	hctx, hcancel := context.WithTimeout(context.Background(), s.stopGrace)
	defer hcancel()
	if err := s.jobs.StopAndCancel(hctx); err != nil {
		return fmt.Errorf("stop the job queue: %w", err)
	}
	return nil
}

type posterWorker struct {
	river.WorkerDefaults[posterArgs]
	svc *Service
}

func (w *posterWorker) Work(ctx context.Context, j *river.Job[posterArgs]) error {
	defer w.svc.beat(ctx, j.JobRow)()
	return w.svc.workPoster(ctx, j.Args.VideoID, j.Attempt, j.MaxAttempts)
}

// Timeout is the poster's bound while its process beats (jobs_rescue.go).
func (w *posterWorker) Timeout(j *river.Job[posterArgs]) time.Duration {
	return w.svc.liveTimeout(j.JobRow, posterTimeout)
}

type maintenanceArgs struct{}

func (maintenanceArgs) Kind() string { return KindMaintenance }

type maintenanceWorker struct {
	river.WorkerDefaults[maintenanceArgs]
	svc *Service
}

func (w *maintenanceWorker) Work(ctx context.Context, j *river.Job[maintenanceArgs]) error {
	defer w.svc.beat(ctx, j.JobRow)()
	if err := w.svc.Maintain(ctx); err != nil {
		w.svc.log.Error("maintenance failed", "err", err)
		return failed(msgMaintain, err)
	}
	return nil
}

// Timeout is the maintenance's bound while its process beats: a run that a
// killed process left running would otherwise keep the next runs, which
// it makes duplicates, from being enqueued until the full bound passed.
// So do the purge and the check.
func (w *maintenanceWorker) Timeout(j *river.Job[maintenanceArgs]) time.Duration {
	return w.svc.liveTimeout(j.JobRow, maintenanceTimeout)
}

type purgeArgs struct{}

func (purgeArgs) Kind() string { return KindPurge }

type purgeWorker struct {
	river.WorkerDefaults[purgeArgs]
	svc *Service
}

func (w *purgeWorker) Work(ctx context.Context, j *river.Job[purgeArgs]) error {
	defer w.svc.beat(ctx, j.JobRow)()
	if _, err := w.svc.Purge(ctx); err != nil {
		w.svc.log.Error("purge failed", "err", err)
		return failed(msgPurge, err)
	}
	return nil
}

func (w *purgeWorker) Timeout(j *river.Job[purgeArgs]) time.Duration {
	return w.svc.liveTimeout(j.JobRow, maintenanceTimeout)
}

type checkArgs struct{}

func (checkArgs) Kind() string { return KindCheck }

// checkWorker runs the periodic check. It reports and repairs nothing:
// its findings go to the log and to metrics (CheckStats), and repairs are
// the operator's call (reel check -fix).
type checkWorker struct {
	river.WorkerDefaults[checkArgs]
	svc *Service
}

// checkOutput is what a check job records (River's job output): whether
// it ran, and its findings.
type checkOutput struct {
	Skipped  bool `json:"skipped,omitempty"`
	Findings int  `json:"findings"`
}

func (w *checkWorker) Work(ctx context.Context, j *river.Job[checkArgs]) error {
	defer w.svc.beat(ctx, j.JobRow)()
	if last, ok := w.svc.lastCheck(ctx); ok {
		w.svc.log.Info("check skipped: the last one ended less than a period ago", "ended", last)
		return river.RecordOutput(ctx, checkOutput{Skipped: true})
	}
	rep, err := w.svc.Check(ctx, CheckOptions{})
	if err != nil {
		w.svc.log.Error("check failed", "err", err)
		return failed(msgCheck, err)
	}
	w.svc.checkStats.last.Store(rep)
	for i, f := range rep.Findings {
		if i == maxLoggedFindings {
			w.svc.log.Warn("check: more findings not logged; run reel check for all", "findings", len(rep.Findings))
			break
		}
		w.svc.log.Warn("check: "+f.Detail, "kind", f.Kind)
	}
	w.svc.log.Info("check done", "findings", len(rep.Findings), "videos", rep.Videos, "blobs", rep.Blobs,
		"accounts", rep.Accounts, "in_flight", rep.InFlight, "unchecked", rep.Unchecked, "took", rep.Finished.Sub(rep.Started).String())
	return river.RecordOutput(ctx, checkOutput{Findings: len(rep.Findings)})
}

// lastCheck returns when the last check that ran ended, if that was less
// than a period ago (less a tenth, for the run's own time). River's leader
// enqueues the check at each start as well as every period, so without
// this a fleet deployed more often than the period would read every video
// and list every blob at each deploy. It reads River's completed jobs,
// which River keeps a day: a longer period's check may run once more.
func (s *Service) lastCheck(ctx context.Context) (time.Time, bool) {
	res, err := s.jobs.JobList(ctx, river.NewJobListParams().Kinds(KindCheck).States(rivertype.JobStateCompleted).
		OrderBy(river.JobListOrderByFinalizedAt, river.SortOrderDesc).First(50))
	if err != nil {
		s.log.Warn("read the last check; checking", "err", err)
		return time.Time{}, false
	}
	for _, j := range res.Jobs {
		var out checkOutput
		if j.FinalizedAt == nil || json.Unmarshal(j.Output(), &out) != nil || out.Skipped {
			continue
		}
		ended := *j.FinalizedAt
		return ended, s.now().Sub(ended) < s.cfg.CheckEvery-s.cfg.CheckEvery/10
	}
	return time.Time{}, false
}

// A check reads every video and blob: on S3, a request per blob.
func (w *checkWorker) Timeout(j *river.Job[checkArgs]) time.Duration {
	return w.svc.liveTimeout(j.JobRow, checkTimeout)
}
