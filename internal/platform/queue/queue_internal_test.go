package queue

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// River's own lines below warnings are dropped, and so is its warning
// about a job cancelled remotely (reel's trash does that on purpose);
// every other warning stays.
func TestRiverLogLevels(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(levelAtLeast{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}), slog.LevelWarn})
	log.Info("producer: job started")
	log.Warn("jobexecutor.JobExecutor: job cancelled remotely", "job_id", 8)
	log.With("service", "videos").Warn("jobexecutor.JobExecutor: job cancelled remotely", "job_id", 9)
	log.Warn("elector: leadership lost")
	out := buf.String()
	if strings.Contains(out, "started") || strings.Contains(out, "cancelled remotely") || !strings.Contains(out, "leadership lost") {
		t.Fatalf("River's lines as logged:\n%s", out)
	}
}
