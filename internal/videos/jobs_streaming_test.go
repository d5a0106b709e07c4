package videos_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/reel-video/reel/internal/media/mediatest"
	"github.com/reel-video/reel/internal/platform/queue"
	"github.com/reel-video/reel/internal/videos"
)

// startQueue starts the service's own job workers, which work the
// streaming jobs beside the posters, and returns its client.
func (e *env) startQueue(t *testing.T) *queue.Client {
	t.Helper()
	e.startWorkers()
	return e.svc.Queue()
}

func (e *env) enqueue(t *testing.T, _ *queue.Client, id string) {
	t.Helper()
	err := e.db.Tx(context.Background(), func(tx *sql.Tx) error { return e.svc.EnqueueStreaming(context.Background(), tx, id) })
	if err != nil {
		t.Fatal(err)
	}
}

// jobs lists a video's streaming jobs as kind/stage: state.
func jobs(t *testing.T, c *queue.Client, id string) map[string]rivertype.JobState {
	t.Helper()
	res, err := c.JobList(context.Background(), river.NewJobListParams().TagsAll(videos.VideoTag(id)).First(100))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]rivertype.JobState{}
	for _, j := range res.Jobs {
		if j.Kind == videos.KindPoster {
			continue // the poster's job carries the video's tag too
		}
		name := j.Kind
		if j.Kind == videos.KindTranscode {
			name += "/" + string(stageOf(t, j.EncodedArgs))
		}
		if _, dup := out[name]; dup {
			t.Fatalf("two %s jobs for one video", name)
		}
		var meta struct {
			VideoID string `json:"video_id"`
		}
		if err := json.Unmarshal(j.Metadata, &meta); err != nil || meta.VideoID != id {
			t.Fatalf("job %s has metadata %s", name, j.Metadata)
		}
		out[name] = j.State
	}
	return out
}

// stageOf reads the stage of a transcode job's arguments.
func stageOf(t *testing.T, args []byte) videos.Stage {
	t.Helper()
	var a videos.TranscodeArgs
	if err := json.Unmarshal(args, &a); err != nil {
		t.Fatal(err)
	}
	return a.Stage
}

func TestStreamingJobs(t *testing.T) {
	mediatest.Tools(t)
	withEnv(t, func(t *testing.T, e *env) {
		c := e.startQueue(t)
		ann := e.user("user")
		id := e.mustUpload(ann, "queued", testVideo(t, 2, 320, 240))
		// Enqueued twice (a retried transaction, a restore): one job each.
		e.enqueue(t, c, id)
		e.enqueue(t, c, id)
		eventually(t, 2*time.Minute, func() string {
			js := jobs(t, c, id)
			want := map[string]rivertype.JobState{"transcode/first": "completed", "transcode/rest": "completed", "storyboard": "completed"}
			if fmt.Sprint(js) != fmt.Sprint(want) {
				return fmt.Sprintf("jobs %v", js)
			}
			return ""
		})
		st := e.streaming(ann, id)
		g := e.grant(ann, id)
		if st.State != "done" || !slices.Equal(st.RenditionsDone, []int{240}) || g.HLSURL == nil || g.StoryboardURL == nil {
			t.Fatalf("after the jobs: %+v %+v", st, g)
		}

		// A video in the trash: its jobs are cancelled, not retried.
		id2 := e.mustUpload(ann, "trashed", testVideo(t, 2, 320, 240))
		if r := e.do("DELETE", "/api/v1/videos/"+id2, ann.token, nil); r.status != 204 {
			t.Fatalf("delete: %d", r.status)
		}
		e.enqueue(t, c, id2)
		eventually(t, time.Minute, func() string {
			js := jobs(t, c, id2)
			if js["transcode/first"] != rivertype.JobStateCancelled || js["storyboard"] != rivertype.JobStateCancelled || len(js) != 2 {
				return fmt.Sprintf("jobs of a trashed video %v", js)
			}
			return ""
		})
		if st := e.streaming(ann, id2); st.State != "pending" {
			t.Fatalf("trashed video: %+v", st)
		}
		// Restored, its jobs are enqueued again and run (a cancelled job
		// does not block a new one).
		if r := e.do("POST", "/api/v1/videos/"+id2+"/restore", ann.token, nil); r.status != 200 {
			t.Fatalf("restore: %d", r.status)
		}
		e.enqueue(t, c, id2)
		eventually(t, 2*time.Minute, func() string {
			if st := e.streaming(ann, id2); st.State != "done" {
				return fmt.Sprintf("restored video: %+v", st)
			}
			return ""
		})
	})
}
