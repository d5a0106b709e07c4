package integration

import (
	"fmt"
	"testing"
	"time"
)

// In split mode on PostgreSQL + S3 with two transcode workers, one worker
// is killed (SIGKILL) while ffmpeg runs a transcode: the other takes the
// job over once its heartbeat stops, the ladder completes, the bucket
// holds exactly the live videos' objects, the owner's storage ledger is
// their sum to the byte, and ffmpeg decodes the whole HLS stream through
// the gateway's signed URLs.
func TestTranscodeWorkerKilledSplit(t *testing.T) {
	clip := makeTranscodeClip(t, 8, "640x360")
	c := splitWith(t, map[string][]string{
		// The videos replica only enqueues; the workers work.
		"videos": append([]string{"REEL_TRANSCODE_WORKERS=0"}, streamingEnv...),
	})
	videosProc := c.procs["videos"]
	workers := []*proc{
		c.replica("transcode-1", videosProc, append([]string{"REEL_TARGET=transcode", "REEL_TRANSCODE_WORKERS=1"}, streamingEnv...)...),
		c.replica("transcode-2", videosProc, append([]string{"REEL_TARGET=transcode", "REEL_TRANSCODE_WORKERS=1"}, streamingEnv...)...),
	}
	for _, w := range workers {
		w.start()
	}
	db := openDB(t, videosProc)
	logJobsOnFailure(t, db)

	ann := c.client()
	ann.login("ann@example.com", "correct horse", true)
	up := ann.upload(clip, "killed mid-transcode")
	if up.status != 201 {
		t.Fatalf("upload: %d %s", up.status, up.raw)
	}
	id := up.json(t)["video"].(map[string]any)["id"].(string)

	// Catch a worker running ffmpeg for a transcode of the video (an H.264
	// encode: the clip is not H.264, so no rung is a remux) and kill it.
	var victim *proc
	var jobID int64
	eventually(t, 240*time.Second, func() string {
		for _, w := range workers {
			if w.encodes() {
				victim = w
			}
		}
		if victim == nil {
			return "no worker runs a transcode"
		}
		return ""
	})
	victim.kill()
	// The dead worker's job is still running in the queue's eyes (one
	// transcode of a video runs at a time).
	jobID = count(t, db, `SELECT COALESCE(MAX(id), 0) FROM river_job WHERE state = 'running' AND kind = 'transcode'`)
	if jobID == 0 {
		t.Fatal("no transcode job running after the kill")
	}
	t.Logf("killed %s during transcode job %d", victim.name, jobID)

	// The job is taken over and completes; the ladder is done.
	eventually(t, 6*time.Minute, func() string {
		var state string
		var attempt int
		if err := db.R.QueryRow(`SELECT state, attempt FROM river_job WHERE id = $1`, jobID).Scan(&state, &attempt); err != nil {
			return err.Error()
		}
		if state != "completed" || attempt < 2 {
			return fmt.Sprintf("job %d: %s after %d attempts", jobID, state, attempt)
		}
		return ""
	})
	// Every job of the video finishes (the ladder's rest follows its
	// first rung as a job of its own), and the ladder is done.
	eventually(t, 6*time.Minute, func() string {
		if n := count(t, db, `SELECT COUNT(*) FROM river_job WHERE kind IN ('transcode', 'storyboard', 'poster') AND state <> 'completed'`); n != 0 {
			return fmt.Sprintf("%d jobs not completed", n)
		}
		return ""
	})
	v := streamingDone(t, ann, id, time.Minute)
	if done, _ := v["streaming"].(map[string]any)["renditions_done"].([]any); len(done) < 2 {
		t.Fatalf("renditions: %v", v["streaming"])
	}
	wantExactStorage(t, c, ann, db)
	decodeHLS(t, ann, id)
	// The killed worker comes back and finds nothing left to do.
	victim.start()
}
