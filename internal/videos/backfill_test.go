package videos_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/reel-video/reel/internal/media/mediatest"
	"github.com/reel-video/reel/internal/videos"
)

// streamingJobRows lists a video's streaming jobs (not its poster's).
func streamingJobRows(t *testing.T, e *env, id string) []*rivertype.JobRow {
	t.Helper()
	res, err := e.svc.Queue().JobList(context.Background(), river.NewJobListParams().TagsAll(videos.VideoTag(id)).First(100))
	if err != nil {
		t.Fatal(err)
	}
	var out []*rivertype.JobRow
	for _, j := range res.Jobs {
		if j.Kind != videos.KindPoster {
			out = append(out, j)
		}
	}
	return out
}

// Videos uploaded while streaming was off (or before it existed) get their
// streaming jobs from the maintenance pass's backfill: a few at a time, at
// the lowest priority, never twice, and never for a video in the trash or
// one River already knows a transcode job of, nor for one whose transcode
// job an admin cancelled; the ladder they start runs at that priority to
// the end.
func TestStreamingBackfill(t *testing.T) {
	mediatest.Tools(t)
	withEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		ann := e.user("user")
		// Uploaded without streaming jobs (the env's default, as with
		// REEL_STREAMING=off). No worker runs until the end (the posters
		// are not cut): a job a worker took could not be cancelled below.
		upload := func(title string) string {
			r := e.upload(ann, title, testVideo(t, 1, 64, 48))
			if r.status != 201 {
				t.Fatalf("upload: %d %s", r.status, r.raw)
			}
			return r.video(t)["id"].(string)
		}
		var ids []string
		for i := range 3 {
			ids = append(ids, upload(fmt.Sprint("old ", i)))
		}
		trashed := upload("trashed")
		if r := e.do("DELETE", "/api/v1/videos/"+trashed, ann.token, nil); r.status != 204 {
			t.Fatalf("delete: %d", r.status)
		}
		for _, id := range append(ids, trashed) {
			if js := streamingJobRows(t, e, id); len(js) != 0 {
				t.Fatalf("video %s has streaming jobs before the backfill: %d", id, len(js))
			}
		}

		// backfilled reports which videos have both jobs, each at the
		// backfill's priority, and fails on anything else.
		backfilled := func() map[string]bool {
			t.Helper()
			got := map[string]bool{}
			for _, id := range append(ids, trashed) {
				js := streamingJobRows(t, e, id)
				if len(js) == 0 {
					continue
				}
				kinds := map[string]int{}
				for _, j := range js {
					kinds[j.Kind]++
					if j.Priority != 4 {
						t.Fatalf("video %s: %s job at priority %d, want 4", id, j.Kind, j.Priority)
					}
				}
				if len(js) != 2 || kinds[videos.KindTranscode] != 1 || kinds[videos.KindStoryboard] != 1 {
					t.Fatalf("video %s: jobs %v", id, kinds)
				}
				got[id] = true
			}
			if got[trashed] {
				t.Fatal("a video in the trash was backfilled")
			}
			return got
		}

		if err := e.svc.BackfillStreaming(ctx, 2); err != nil {
			t.Fatal(err)
		}
		first := backfilled()
		if len(first) != 2 {
			t.Fatalf("the first pass backfilled %d videos, want the batch of 2", len(first))
		}
		// Two still wait: the next pass adds nothing.
		if err := e.svc.BackfillStreaming(ctx, 2); err != nil {
			t.Fatal(err)
		}
		if got := backfilled(); len(got) != 2 {
			t.Fatalf("a pass with the batch still waiting backfilled %d videos", len(got))
		}

		// One of them is cancelled (as by an admin): the next pass tops
		// the batch up with the last video, and does not enqueue the
		// cancelled one again.
		var cancelled string
		for id := range first {
			cancelled = id
			break
		}
		for _, j := range streamingJobRows(t, e, cancelled) {
			if _, err := e.svc.Queue().JobCancel(ctx, j.ID); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.svc.BackfillStreaming(ctx, 2); err != nil {
			t.Fatal(err)
		}
		if got := backfilled(); len(got) != 3 {
			t.Fatalf("after a cancel, %d videos backfilled, want all 3", len(got))
		}
		for _, j := range streamingJobRows(t, e, cancelled) {
			if j.State != rivertype.JobStateCancelled {
				t.Fatalf("the cancelled video's %s job is %s: enqueued again", j.Kind, j.State)
			}
		}

		// An admin cancels the last one's transcode job: its ladder is
		// failed, so no pass enqueues it again either.
		var last string
		for _, id := range ids {
			if !first[id] {
				last = id
			}
		}
		admin := e.user("admin")
		for _, j := range streamingJobRows(t, e, last) {
			if j.Kind != videos.KindTranscode {
				continue
			}
			if r := e.do("POST", fmt.Sprint("/api/v1/jobs/", j.ID, "/cancel"), admin.token, nil); r.status != 200 {
				t.Fatalf("admin cancel: %d %s", r.status, r.raw)
			}
		}
		if st := e.streaming(ann, last); st.State != "failed" {
			t.Fatalf("after an admin cancelled its transcode job: %+v", st)
		}
		if err := e.svc.BackfillStreaming(ctx, 3); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{cancelled, last} {
			for _, j := range streamingJobRows(t, e, id) {
				if j.Kind == videos.KindTranscode && j.State != rivertype.JobStateCancelled {
					t.Fatalf("video %s: a transcode job %s after its cancel", id, j.State)
				}
			}
		}

		// The workers run the remaining ladder to the end; the rest of a
		// backfilled ladder stays at the backfill's priority.
		e.startWorkers()
		for _, id := range ids {
			if id == cancelled || id == last {
				continue
			}
			// The ladder is done once the first job is (one rung); the
			// rest's job is inserted after that, and finds nothing to do.
			var stages map[videos.Stage]int
			eventually(t, 3*time.Minute, func() string {
				if st := e.streaming(ann, id); st.State != "done" {
					return fmt.Sprintf("backfilled video %s: %+v", id, st)
				}
				stages = map[videos.Stage]int{}
				for _, j := range streamingJobRows(t, e, id) {
					if j.Kind == videos.KindTranscode && j.State == rivertype.JobStateCompleted {
						stages[stageOf(t, j.EncodedArgs)] = j.Priority
					}
				}
				if len(stages) != 2 {
					return fmt.Sprintf("video %s: transcode jobs completed by stage %v", id, stages)
				}
				return ""
			})
			if stages[videos.StageFirst] != 4 || stages[videos.StageRest] != 4 {
				t.Fatalf("video %s: transcode priorities by stage %v, want 4 for both", id, stages)
			}
		}
		if st := e.streaming(ann, cancelled); st.State != "pending" {
			t.Fatalf("the cancelled video's streaming: %+v", st)
		}
	})
}
