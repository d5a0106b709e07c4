package videos_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// allJobs lists every job of the env's database.
func (e *env) allJobs() []*rivertype.JobRow {
	e.t.Helper()
	res, err := e.svc.Queue().JobList(context.Background(), river.NewJobListParams().First(1000))
	if err != nil {
		e.t.Fatal(err)
	}
	return res.Jobs
}

// The poster job is inserted in the transaction that marks the video
// ready: when that transaction fails after the insert (here its event
// cannot be written), the upload fails and leaves neither video nor job.
func TestPosterJobCommitsWithTheVideo(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		ann := e.user("user")
		clip := testVideo(t, 1, 64, 48)
		if _, err := e.db.W.Exec(`ALTER TABLE videos_outbox RENAME TO videos_outbox_away`); err != nil {
			t.Fatal(err)
		}
		if r := e.upload(ann, "rolled back", clip); r.status != 500 {
			t.Fatalf("upload without its outbox: %d %s", r.status, r.raw)
		}
		if jobs := e.allJobs(); len(jobs) != 0 {
			t.Fatalf("a failed finalisation left %d jobs", len(jobs))
		}
		e.noLeaks(t, 0)
		if _, err := e.db.W.Exec(`ALTER TABLE videos_outbox_away RENAME TO videos_outbox`); err != nil {
			t.Fatal(err)
		}
		r := e.upload(ann, "committed", clip)
		if r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.raw)
		}
		id := r.video(t)["id"].(string)
		jobs := e.allJobs()
		if len(jobs) != 1 || jobs[0].Kind != "poster" || len(jobs[0].Tags) != 1 || jobs[0].Tags[0] != "video-"+id {
			t.Fatalf("jobs after an upload: %+v", jobs)
		}
	})
}

// Trashing a video cancels its waiting poster job; restoring it enqueues a
// new one, which cuts the poster.
func TestTrashCancelsRestoreRequeues(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		ann := e.user("user")
		r := e.upload(ann, "cancelled", testVideo(t, 1, 64, 48))
		if r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.raw)
		}
		id := r.video(t)["id"].(string)
		if d := e.do("DELETE", "/api/v1/videos/"+id, ann.token, nil); d.status != 204 {
			t.Fatalf("delete: %d", d.status)
		}
		jobs := e.posterJobs(id)
		if len(jobs) != 1 || jobs[0].State != rivertype.JobStateCancelled {
			t.Fatalf("the poster job of a trashed video: %v", jobStates(jobs))
		}
		// Cancelled as River's own JobCancel would have: finalized, and
		// marked so that River's rescuer leaves it be.
		if jobs[0].FinalizedAt == nil || !strings.Contains(string(jobs[0].Metadata), "cancel_attempted_at") {
			t.Fatalf("the cancelled job: finalized at %v, metadata %s", jobs[0].FinalizedAt, jobs[0].Metadata)
		}
		e.cutPosters()
		if p := posterBlobs(e); len(p) != 0 {
			t.Fatalf("a trashed video got a poster: %v", p)
		}
		if rs := e.do("POST", "/api/v1/videos/"+id+"/restore", ann.token, nil); rs.status != 200 {
			t.Fatalf("restore: %d %s", rs.status, rs.raw)
		}
		// (The workers run since cutPosters: the new job may have started.)
		jobs = e.posterJobs(id)
		if len(jobs) != 2 || jobs[0].State == rivertype.JobStateCancelled {
			t.Fatalf("poster jobs after the restore: %v", jobStates(jobs))
		}
		e.cutPosters()
		if _, _, objects := e.quota.state(ann.id); objects != 2 || len(posterBlobs(e)) != 1 {
			t.Fatalf("%d objects charged, poster blobs %v", objects, posterBlobs(e))
		}
		// Deleting all of an owner's videos cancels their jobs too (the
		// workers run now: the job may be running, or even done, and
		// then gives its poster back).
		r2 := e.upload(ann, "all", testVideo(t, 1, 64, 48))
		id2 := r2.video(t)["id"].(string)
		if d := e.do("DELETE", "/api/v1/videos", ann.token, nil); d.status != 200 {
			t.Fatalf("delete all: %d", d.status)
		}
		eventually(t, 30*time.Second, func() string {
			jobs := e.posterJobs(id2)
			if len(jobs) != 1 || (jobs[0].State != rivertype.JobStateCancelled && jobs[0].State != rivertype.JobStateCompleted) {
				return fmt.Sprintf("the poster job after delete-all: %v", jobStates(jobs))
			}
			if p := posterBlobs(e); len(p) != 1 {
				return fmt.Sprintf("poster blobs after delete-all: %v", p)
			}
			return ""
		})
	})
}

// The jobs API is for admins only; it lists jobs newest first with
// filters, and retries and cancels them.
func TestJobsAPI(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		ann, admin := e.user("user"), e.user("admin")
		clip := testVideo(t, 1, 64, 48)
		var ids []string
		for i := range 3 {
			r := e.upload(ann, fmt.Sprint("v", i), clip)
			if r.status != 201 {
				t.Fatalf("upload: %d %s", r.status, r.raw)
			}
			ids = append(ids, r.video(t)["id"].(string))
		}
		jobID := fmt.Sprint(e.posterJobs(ids[0])[0].ID)
		for _, c := range []struct{ method, path string }{
			{"GET", "/api/v1/jobs"}, {"POST", "/api/v1/jobs/" + jobID + "/retry"}, {"POST", "/api/v1/jobs/" + jobID + "/cancel"},
		} {
			if r := e.do(c.method, c.path, "", nil); r.status != 401 {
				t.Fatalf("anonymous %s %s: %d", c.method, c.path, r.status)
			}
			if r := e.do(c.method, c.path, ann.token, nil); r.status != 403 {
				t.Fatalf("user %s %s: %d", c.method, c.path, r.status)
			}
		}
		for _, path := range []string{"/api/v1/jobs/999999999/retry", "/api/v1/jobs/x/cancel", "/api/v1/jobs/-1/retry"} {
			if r := e.do("POST", path, admin.token, nil); r.status != 404 || r.code() != "job_not_found" {
				t.Fatalf("%s: %d %s", path, r.status, r.raw)
			}
		}
		for q, want := range map[string]int{"state=nope": 422, "kind=Bad-Kind": 422, "video_id=123": 422, "cursor=nope": 400, "limit=0": 400} {
			if r := e.do("GET", "/api/v1/jobs?"+q, admin.token, nil); r.status != want {
				t.Fatalf("?%s: %d %s", q, r.status, r.raw)
			}
		}

		// Newest first, by pages.
		var seen []string
		cursor := ""
		for {
			r := e.do("GET", "/api/v1/jobs?limit=2&state=available&kind=poster"+cursor, admin.token, nil)
			if r.status != 200 {
				t.Fatalf("list: %d %s", r.status, r.raw)
			}
			for _, it := range r.body["items"].([]any) {
				j := it.(map[string]any)
				if j["kind"] != "poster" || j["state"] != "available" || j["queue"] != "poster" || j["max_attempts"] != float64(3) {
					t.Fatalf("job %v", j)
				}
				seen = append(seen, j["video_id"].(string))
			}
			next, _ := r.body["next_cursor"].(string)
			if next == "" {
				break
			}
			cursor = "&cursor=" + next
		}
		if strings.Join(seen, ",") != strings.Join([]string{ids[2], ids[1], ids[0]}, ",") {
			t.Fatalf("listed %v, want newest first %v", seen, ids)
		}
		if r := e.do("GET", "/api/v1/jobs?video_id="+ids[1], admin.token, nil); len(r.body["items"].([]any)) != 1 {
			t.Fatalf("by video: %s", r.raw)
		}

		// Cancelled by an admin, the video goes without a poster: the
		// placeholder stays, and no worker cuts it.
		r := e.do("POST", "/api/v1/jobs/"+jobID+"/cancel", admin.token, nil)
		if j, _ := r.body["job"].(map[string]any); r.status != 200 || j["state"] != "cancelled" || j["video_id"] != ids[0] || j["finalized_at"] == nil {
			t.Fatalf("cancel: %d %s", r.status, r.raw)
		}
		e.cutPosters()
		if got := len(posterBlobs(e)); got != 2 {
			t.Fatalf("%d posters cut, want the two jobs not cancelled", got)
		}
		// Retried, it runs again and the video gets its poster.
		r = e.do("POST", "/api/v1/jobs/"+jobID+"/retry", admin.token, nil)
		if j, _ := r.body["job"].(map[string]any); r.status != 200 || j["state"] != "available" {
			t.Fatalf("retry: %d %s", r.status, r.raw)
		}
		e.cutPosters()
		if got := len(posterBlobs(e)); got != 3 {
			t.Fatalf("%d posters after the retry, want 3", got)
		}
		if r := e.do("GET", "/api/v1/jobs?state=completed", admin.token, nil); len(r.body["items"].([]any)) != 3 {
			t.Fatalf("completed jobs: %s", r.raw)
		}
	})
}
