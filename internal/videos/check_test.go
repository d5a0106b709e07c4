package videos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/reel-video/reel/internal/platform/authn/authntest"
	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/videos"
)

// check runs the consistency check at the env's clock, after moving it
// past the default grace period: everything the test did so far is then
// settled (blobs' and the storage service's times are the wall clock's).
func (e *env) check(t *testing.T, fix bool) *videos.CheckReport {
	t.Helper()
	e.advance(videos.DefaultCheckGrace + time.Hour)
	rep, err := e.svc.Check(context.Background(), videos.CheckOptions{Fix: fix})
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if len(rep.Unchecked) != 0 {
		t.Fatalf("parts unchecked: %v", rep.Unchecked)
	}
	return rep
}

func wantFindings(t *testing.T, rep *videos.CheckReport, want map[string]int) {
	t.Helper()
	n := 0
	for kind, c := range want {
		if got := rep.Count(kind); got != c {
			t.Errorf("%d findings of %s, want %d", got, kind, c)
		}
		n += c
	}
	if len(rep.Findings) != n {
		t.Errorf("%d findings, want %d", len(rep.Findings), n)
	}
	if t.Failed() {
		for _, f := range rep.Findings {
			t.Log(f)
		}
		t.FailNow()
	}
}

func (e *env) readBlob(t *testing.T, key string) []byte {
	t.Helper()
	o, err := e.blobs.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheck: a healthy system after a normal flow checks clean; then an
// orphan blob, missing derived files (the poster, and a rendition's file
// where there are renditions), two ledgers off (a total and a stray
// object) and reservations past their time are found; -fix repairs them
// all, the poster and rendition jobs make the files again, the ledger is
// exact to the byte and a second check is clean. A missing source blob is
// reported only (TestCheckMissingSource).
func TestCheck(t *testing.T) {
	testCheck(t, true)
}

// TestCheckOnS3: the same with the blobs in S3, and a poster but no
// renditions (their blobs are checked as the poster's are; the disk test
// covers them, and ffmpeg's time).
func TestCheckOnS3(t *testing.T) {
	raw := s3URL(t)
	testCheck(t, false, func(c *envConfig) { c.blobs = func(blob.Store) blob.Store { return s3Store(t, raw) } })
}

func testCheck(t *testing.T, streaming bool, opts ...func(*envConfig)) {
	clip := testVideo(t, 3, 640, 360)
	withRealServices(t, -1, -1, func(t *testing.T, e *env, rs *realServices) {
		ctx := context.Background()
		ann, bob := e.user("user"), e.user("user")
		id := e.mustUpload(ann, "kept", clip)
		if _, err := exec.LookPath("ffmpeg"); err == nil && streaming {
			// Renditions, playlists and a storyboard: stored and charged
			// like the video.
			e.transcode(id, videos.StageFirst)
			e.transcode(id, videos.StageRest)
			if err := e.svc.Storyboard(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		gone := e.mustUpload(bob, "trashed", clip)
		if r := e.do("DELETE", "/api/v1/videos/"+gone, bob.token, nil); r.status != 204 {
			t.Fatalf("delete: %d %s", r.status, r.raw)
		}

		rep := e.check(t, false)
		wantFindings(t, rep, nil)
		if rep.Videos != 2 || rep.Accounts != 2 || rep.InFlight != 0 || rep.Blobs < 3 {
			t.Fatalf("healthy check looked at %+v", rep)
		}
		t.Logf("healthy: %d videos, %d blobs, %d accounts", rep.Videos, rep.Blobs, rep.Accounts)

		// An orphan: a blob of a video that does not exist.
		orphan := "videos/" + uuid.NewString() + "/video.mp4"
		if _, err := e.blobs.Put(ctx, orphan, strings.NewReader("left behind"), -1, "video/mp4"); err != nil {
			t.Fatal(err)
		}
		// Missing derived files: the kept video's poster, and where there
		// are renditions, the lowest rung's video file (a rung of the
		// rest of the ladder when it has more than one).
		poster := "videos/" + id + "/" + videos.PosterFile
		missing := map[string]bool{poster: true}
		before := e.derivedFiles(t, id)
		rung := ""
		for name := range before {
			if strings.HasSuffix(name, ".mp4") && (rung == "" || len(name) < len(rung) || (len(name) == len(rung) && name < rung)) {
				rung = name
			}
		}
		if streaming && rung == "" {
			t.Fatalf("no rendition among %v", before)
		}
		remade := map[string]bool{}
		if rung != "" {
			missing["videos/"+id+"/"+rung] = true
			remade[rung], remade[strings.TrimSuffix(rung, ".mp4")+".m3u8"] = true, true
			// And the storyboard's WebVTT file (its sprite goes with it).
			missing["videos/"+id+"/"+videos.StoryboardFile] = true
			remade[videos.StoryboardFile], remade[videos.StoryboardSprite] = true, true
			t.Logf("removing %s and %s of %v", rung, videos.StoryboardFile, before)
		}
		for k := range missing {
			if err := e.blobs.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		// Ann's ledger counts 7 bytes too many; Bob's (whose only video
		// is in the trash) an object that is not his.
		if _, err := e.db.W.ExecContext(ctx, `UPDATE storage_accounts SET used = used + 7 WHERE user_id = $1`, ann.id); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.W.ExecContext(ctx, `INSERT INTO storage_objects (user_id, object, bytes, created_at, updated_at)
VALUES ($1, 'videos/stray/video.mp4', 50, 0, 0)`, bob.id); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.W.ExecContext(ctx, `UPDATE storage_accounts SET used = used + 50 WHERE user_id = $1`, bob.id); err != nil {
			t.Fatal(err)
		}
		// Reservations that the sweeps have not released, hours after
		// their time.
		carl := authntest.NewUserID()
		if _, err := rs.storage.Reserve(ctx, carl, 5, time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := rs.usage.ReserveUpload(ctx, carl, 5, time.Minute); err != nil {
			t.Fatal(err)
		}
		later := func() time.Time { return time.Now().Add(videos.DefaultCheckGrace + time.Hour) }
		rs.storage.SetClock(later)
		rs.usage.SetClock(later)

		found := map[string]int{
			videos.FindOrphanBlob: 1, videos.FindMissingBlob: len(missing), videos.FindLedger: 2,
			videos.FindLapsedStorage: 1, videos.FindLapsedUpload: 1,
		}
		rep = e.check(t, false)
		wantFindings(t, rep, found)
		if rep.Unfixed() != len(rep.Findings) {
			t.Fatalf("a check without -fix fixed something: %+v", rep.Findings)
		}
		for _, f := range rep.Findings {
			switch {
			case f.Kind == videos.FindOrphanBlob && f.Key != orphan,
				f.Kind == videos.FindMissingBlob && (!missing[f.Key] || f.VideoID != id),
				f.Kind == videos.FindLedger && f.UserID == ann.id && f.Got != f.Want+7,
				f.Kind == videos.FindLedger && f.UserID == bob.id && (f.Got != 50 || f.Want != 0):
				t.Errorf("finding %+v", f)
			}
		}

		rep = e.check(t, true)
		wantFindings(t, rep, found)
		if n := rep.Unfixed(); n != 0 {
			t.Fatalf("%d findings not fixed: %+v", n, rep.Findings)
		}
		if _, err := e.blobs.Stat(ctx, orphan); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("the orphan is still there: %v", err)
		}
		if u, err := rs.storage.Usage(ctx, bob.id); err != nil || u.UsedBytes != 0 {
			t.Errorf("bob's usage after the fix: %+v, %v", u, err)
		}

		// The poster, the rung and the storyboard are made again by their
		// jobs, the rung alone: the ladder's other files are those made
		// before.
		e.runJobs(videos.KindPoster, videos.KindTranscode, videos.KindStoryboard)
		if got := e.readBlob(t, poster); len(got) == 0 {
			t.Fatal("the poster made again is empty")
		}
		after := e.derivedFiles(t, id)
		if len(after) != len(before) {
			t.Fatalf("files after the repair %v, before %v", after, before)
		}
		for name, made := range before {
			switch {
			case remade[name]:
				if after[name] == made {
					t.Errorf("%s was not made again", name)
				}
			case after[name] != made:
				t.Errorf("%s was made again (%d, was %d)", name, after[name], made)
			}
		}
		if rung != "" {
			var state string
			if err := e.db.R.QueryRowContext(ctx, `SELECT state FROM video_renditions WHERE video_id = $1 AND height = $2`,
				id, strings.TrimSuffix(rung, ".mp4")).Scan(&state); err != nil || state != "done" {
				t.Fatalf("rendition %s: %q, %v", rung, state, err)
			}
			if v := e.do("GET", "/api/v1/videos/"+id, ann.token, nil).video(t); v["streaming"].(map[string]any)["state"] != "done" {
				t.Fatalf("streaming after the repair: %v", v["streaming"])
			}
		}
		// Ann's ledger counts exactly what her video records.
		var stored int64
		if err := e.db.R.QueryRowContext(ctx, `SELECT size_bytes + poster_bytes
  + COALESCE((SELECT SUM(size_bytes) FROM video_files WHERE video_id = $1), 0) FROM videos WHERE id = $1`, id).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if u, err := rs.storage.Usage(ctx, ann.id); err != nil || u.UsedBytes != stored {
			t.Fatalf("ann's usage after the repair: %+v, %v; her video stores %d bytes", u, err, stored)
		}

		rep = e.check(t, false)
		wantFindings(t, rep, nil)
		if rep.InFlight != 0 {
			t.Fatalf("%d accounts left alone as in flight", rep.InFlight)
		}
	}, opts...)
}

// derivedFiles maps the names of a video's derived files to when each
// was recorded.
func (e *env) derivedFiles(t *testing.T, id string) map[string]int64 {
	t.Helper()
	rows, err := e.db.R.QueryContext(context.Background(), `SELECT name, created_at FROM video_files WHERE video_id = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var at int64
		if err := rows.Scan(&name, &at); err != nil {
			t.Fatal(err)
		}
		out[name] = at
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCheckMissingSource: a video whose own bytes are missing is reported
// and left as it is by -fix (nothing can make them again), its poster too;
// once the blob is restored the check is clean.
func TestCheckMissingSource(t *testing.T) {
	clip := testVideo(t, 1, 160, 120)
	withRealServices(t, -1, -1, func(t *testing.T, e *env, _ *realServices) {
		ctx := context.Background()
		ann := e.user("user")
		id := e.mustUpload(ann, "lost", clip)
		var key string
		if err := e.db.R.QueryRowContext(ctx, `SELECT video_key FROM videos WHERE id = $1`, id).Scan(&key); err != nil {
			t.Fatal(err)
		}
		saved := e.readBlob(t, key)
		poster := "videos/" + id + "/" + videos.PosterFile
		if err := e.blobs.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		if err := e.blobs.Delete(ctx, poster); err != nil {
			t.Fatal(err)
		}
		rep := e.check(t, true)
		wantFindings(t, rep, map[string]int{videos.FindMissingBlob: 2})
		if rep.Unfixed() != 2 {
			t.Fatalf("-fix fixed something of a video without its bytes: %+v", rep.Findings)
		}
		if _, err := e.blobs.Put(ctx, key, bytes.NewReader(saved), int64(len(saved)), "video/mp4"); err != nil {
			t.Fatal(err)
		}
		rep = e.check(t, true)
		wantFindings(t, rep, map[string]int{videos.FindMissingBlob: 1})
		if rep.Unfixed() != 0 {
			t.Fatalf("the poster was not repaired: %+v", rep.Findings)
		}
		e.cutPosters()
		wantFindings(t, e.check(t, false), nil)
	})
}

// TestCheckLeavesInFlightAlone: within the grace period, a ledger that
// does not match and a blob of no video are an upload or a trash in
// flight, not findings.
func TestCheckLeavesInFlightAlone(t *testing.T) {
	clip := testVideo(t, 1, 160, 120)
	withRealServices(t, -1, -1, func(t *testing.T, e *env, rs *realServices) {
		ctx := context.Background()
		ann := e.user("user")
		e.mustUpload(ann, "fresh", clip)
		if _, err := e.blobs.Put(ctx, "videos/"+uuid.NewString()+"/video.mp4", strings.NewReader("uploading"), -1, "video/mp4"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.W.ExecContext(ctx, `UPDATE storage_accounts SET used = used + 7, updated_at = $1 WHERE user_id = $2`,
			time.Now().UnixMicro(), ann.id); err != nil {
			t.Fatal(err)
		}
		rep, err := e.svc.Check(ctx, videos.CheckOptions{Fix: true})
		if err != nil {
			t.Fatal(err)
		}
		wantFindings(t, rep, nil)
		if rep.InFlight != 1 {
			t.Fatalf("in flight: %d, want ann's account", rep.InFlight)
		}
	})
}

// The periodic check runs once a period across restarts: River's leader
// enqueues it at each start, and a check that ended less than a period
// ago makes that one a skip. A skipped check does not count as one that
// ran.
func TestPeriodicCheckRunsOncePerPeriod(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.mustUpload(e.user("user"), "checked", testVideo(t, 1, 64, 48))
		run := func() (ran bool) {
			t.Helper()
			if err := e.svc.EnqueueCheck(ctx); err != nil {
				t.Fatal(err)
			}
			e.runJobs(videos.KindCheck)
			res, err := e.svc.Queue().JobList(ctx, river.NewJobListParams().Kinds(videos.KindCheck).
				States(rivertype.JobStateCompleted).OrderBy(river.JobListOrderByID, river.SortOrderDesc).First(1))
			if err != nil || len(res.Jobs) != 1 {
				t.Fatalf("the check job: %v %v", res, err)
			}
			var out struct {
				Skipped  bool `json:"skipped"`
				Findings *int `json:"findings"`
			}
			if err := json.Unmarshal(res.Jobs[0].Output(), &out); err != nil {
				t.Fatalf("the check job's output %q: %v", res.Jobs[0].Output(), err)
			}
			if !out.Skipped && (out.Findings == nil || *out.Findings != 0) {
				t.Fatalf("the check job's output: %s", res.Jobs[0].Output())
			}
			return !out.Skipped
		}
		if !run() {
			t.Fatal("the first check was skipped")
		}
		if e.svc.CheckStats().Last() == nil {
			t.Fatal("no report from the check that ran")
		}
		e.advance(50 * time.Minute)
		if run() {
			t.Fatal("a check ran 50 minutes after the last, with a period of an hour")
		}
		// The skip is not the last check: an hour after the one that ran,
		// the next runs.
		e.advance(15 * time.Minute)
		if !run() {
			t.Fatal("a check was skipped an hour after the last one ran")
		}
	}, func(c *envConfig) { c.checkEvery = time.Hour })
}
