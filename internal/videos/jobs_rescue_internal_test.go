package videos

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
)

func TestStreamingTimeoutFollowsDuration(t *testing.T) {
	if got := streamingTimeout(0, transcodeTimeout); got != transcodeTimeout {
		t.Fatalf("unknown duration: %v", got)
	}
	if got := streamingTimeout(60, transcodeTimeout); got != streamingTimeoutFloor+4*time.Minute {
		t.Fatalf("a minute: %v", got)
	}
	if a, b := streamingTimeout(600, time.Hour), streamingTimeout(7200, time.Hour); a >= b {
		t.Fatalf("a longer video must get longer: %v >= %v", a, b)
	}
}

// A streaming job is let go (a nanosecond's timeout, which River's
// rescuer takes) only once its attempt has neither begun nor beaten
// within three heartbeats; a heartbeat of an earlier attempt counts for
// nothing.
func TestLiveTimeoutByHeartbeat(t *testing.T) {
	s := &Service{cfg: Config{Workers: &WorkerConfig{Heartbeat: 2 * time.Second}}}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	full := time.Hour
	meta := func(hb *heartbeat, dur float64) []byte {
		m := map[string]any{"video_id": "v", "duration_seconds": dur}
		if hb != nil {
			m["output"] = hb
		}
		b, _ := json.Marshal(m)
		return b
	}
	row := func(attempt int, hb *heartbeat) *rivertype.JobRow {
		return &rivertype.JobRow{ID: 1, Attempt: attempt, AttemptedAt: &start, Metadata: meta(hb, 12)}
	}
	cases := []struct {
		name string
		row  *rivertype.JobRow
		now  time.Time
		want time.Duration
	}{
		{"just started", row(1, nil), start.Add(time.Second), full},
		{"started, never beat", row(1, nil), start.Add(7 * time.Second), time.Nanosecond},
		{"beating", row(1, &heartbeat{Attempt: 1, At: start.Add(60 * time.Second)}), start.Add(64 * time.Second), full},
		{"stopped beating", row(1, &heartbeat{Attempt: 1, At: start.Add(60 * time.Second)}), start.Add(67 * time.Second), time.Nanosecond},
		{"an earlier attempt's beat", row(2, &heartbeat{Attempt: 1, At: start.Add(60 * time.Second)}), start.Add(64 * time.Second), time.Nanosecond},
		{"the new attempt starts", row(2, &heartbeat{Attempt: 1, At: start.Add(-time.Minute)}), start, full},
		{"not attempted", &rivertype.JobRow{}, start, full},
	}
	for _, c := range cases {
		if got := s.liveTimeoutAt(c.row, full, c.now); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if d := videoDuration(row(1, nil)); d != 12 {
		t.Fatalf("duration %v", d)
	}
}
