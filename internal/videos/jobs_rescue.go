package videos

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// How long streaming jobs may run, and how the queue tells a job whose
// process died from one still running (docs/decisions/0016-transcode-rescue.md).
//
// River takes a running job for a dead worker's once it has run longer
// than both its client's RescueAfter and its kind's Timeout(job), which
// River asks of the job row as it is now. So a running transcode,
// storyboard or poster job (and the maintenance, purge and check) writes a
// heartbeat into its output every JobHeartbeat;
// Timeout answers the job's full, duration-based bound while the
// heartbeat is fresh and a nanosecond once three have been missed, and
// the leader's rescuer makes the job available to another worker on its
// next pass. The worker running it computes Timeout at the start of the
// attempt, before any heartbeat of this attempt exists, and gets the full
// bound, since the attempt began just now.

const (
	// streamingTimeoutFloor and streamingTimeoutPerSecond make a streaming
	// job's bound: the floor plus this many seconds for every second of the
	// video. A full ladder takes about the video's duration on two cores;
	// four times that leaves room for a loaded machine.
	streamingTimeoutFloor     = 10 * time.Minute
	streamingTimeoutPerSecond = 4
	// defaultHeartbeat is WorkerConfig.Heartbeat's default.
	defaultHeartbeat = 10 * time.Second
	// missedBeats is how many heartbeats a job may miss before it is
	// taken for a dead process's.
	missedBeats = 3
)

// streamingTimeout bounds one attempt of a streaming job of a video of
// the given duration; an unknown duration gets ceiling.
func streamingTimeout(seconds float64, ceiling time.Duration) time.Duration {
	if seconds <= 0 {
		return ceiling
	}
	return streamingTimeoutFloor + time.Duration(seconds*streamingTimeoutPerSecond*float64(time.Second))
}

// heartbeat is a running job's last sign of life, kept as its output.
type heartbeat struct {
	Attempt int       `json:"heartbeat_attempt"`
	At      time.Time `json:"heartbeat_at"`
}

// jobHeartbeat reads the heartbeat in a job's metadata, if any.
func jobHeartbeat(row *rivertype.JobRow) (heartbeat, bool) {
	var m struct {
		Output *heartbeat `json:"output"`
	}
	if json.Unmarshal(row.Metadata, &m) != nil || m.Output == nil {
		return heartbeat{}, false
	}
	return *m.Output, true
}

// liveTimeout is a streaming job's Timeout: full while its process shows
// signs of life (the attempt began, or beat, within missedBeats
// heartbeats), else a nanosecond, which lets River's rescuer take it.
func (s *Service) liveTimeout(row *rivertype.JobRow, full time.Duration) time.Duration {
	return s.liveTimeoutAt(row, full, time.Now())
}

func (s *Service) liveTimeoutAt(row *rivertype.JobRow, full time.Duration, now time.Time) time.Duration {
	if row == nil || row.AttemptedAt == nil {
		return full
	}
	last := *row.AttemptedAt
	if hb, ok := jobHeartbeat(row); ok && hb.Attempt == row.Attempt && hb.At.After(last) {
		last = hb.At
	}
	if now.Sub(last) > missedBeats*s.heartbeatEvery() {
		return time.Nanosecond
	}
	return full
}

func (s *Service) heartbeatEvery() time.Duration {
	if s.cfg.Workers != nil && s.cfg.Workers.Heartbeat > 0 {
		return s.cfg.Workers.Heartbeat
	}
	return defaultHeartbeat
}

// beat writes the job's heartbeat every heartbeatEvery until the
// returned stop is called. A failed write is only logged: the next may
// pass, and a job that misses missedBeats is run again elsewhere, which
// its work allows (each rung is recorded once).
func (s *Service) beat(ctx context.Context, row *rivertype.JobRow) (stop func()) {
	client, err := river.ClientFromContextSafely[*sql.Tx](ctx)
	if err != nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.heartbeatEvery())
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			hb := heartbeat{Attempt: row.Attempt, At: time.Now().UTC()}
			if _, err := client.JobUpdate(ctx, row.ID, &river.JobUpdateParams{Output: hb}); err != nil && ctx.Err() == nil {
				s.log.Warn("job heartbeat", "job_id", row.ID, "kind", row.Kind, "err", err)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// rescueAfterFor is the queue's RescueAfter for a heartbeat period: a job
// is looked at once it may have missed its beats; each kind's Timeout
// then decides.
func rescueAfterFor(heartbeat time.Duration) time.Duration {
	return missedBeats * heartbeat
}

// videoDuration is the duration a streaming job's metadata carries.
func videoDuration(row *rivertype.JobRow) float64 {
	var m jobMeta
	if row == nil || json.Unmarshal(row.Metadata, &m) != nil {
		return 0
	}
	return m.DurationSeconds
}
