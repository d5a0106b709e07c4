package videos_test

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
	"github.com/reel-video/reel/internal/videos"
)

// arrivedUnfinished leaves a resumable upload of clip as a process killed
// between its last byte and its finalisation does: open, every byte in
// its file, no video. It returns the upload's location and id.
func (e *env) arrivedUnfinished(u user, clip []byte) (string, string) {
	e.t.Helper()
	c := e.tusCreate(u, len(clip), tusMeta("title", "cut short"))
	if c.status != 201 {
		e.t.Fatalf("create: %d %s", c.status, c.raw)
	}
	loc := c.header.Get("Location")
	id := path.Base(loc)
	if err := os.WriteFile(filepath.Join(e.dirs.tus, id), clip, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return loc, id
}

// wantFinished checks that upload id made a ready video of its own id,
// counted once, and that nothing is left held or behind.
func (e *env) wantFinished(t *testing.T, u user, id string, size int) {
	t.Helper()
	v := e.do("GET", "/api/v1/videos/"+id, u.token, nil)
	if v.status != 200 || v.video(t)["status"] != "ready" {
		t.Fatalf("the upload's video: %d %s", v.status, v.raw)
	}
	if used, _ := e.limit.state(u.id); used != int64(size) {
		t.Fatalf("daily volume %d, want %d", used, size)
	}
	e.cutPosters()
	e.noLeaks(t, 1)
	if n := e.actions()["UPLOAD_VIDEO:success"]; n != 1 {
		t.Fatalf("%d UPLOAD_VIDEO events, want 1: %v", n, e.actions())
	}
}

// A resumable upload whose bytes all arrived but whose finalisation a
// kill cut short is finished when its client asks again: the HEAD makes
// the video and answers as the last PATCH would have.
func TestTusFinishedWhenTheClientAsksAgain(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		clip := testVideo(t, 1, 64, 48)
		ann, bob := e.user("user"), e.user("user")
		loc, id := e.arrivedUnfinished(ann, clip)
		if r := e.do("HEAD", loc, bob.token, nil, "Tus-Resumable", "1.0.0"); r.status != 404 {
			t.Fatalf("someone else's HEAD: %d", r.status)
		}
		off, r := e.tusOffset(ann, loc)
		if r.status != 200 || off != len(clip) || r.header.Get(videos.VideoIDHeader) != id {
			t.Fatalf("HEAD: %d offset %d video %q, want 200 %d %s", r.status, off, r.header.Get(videos.VideoIDHeader), len(clip), id)
		}
		e.wantFinished(t, ann, id, len(clip))
		// The PATCH at the final offset of another such upload does the same.
		loc, id = e.arrivedUnfinished(ann, clip)
		p := e.tusPatch(ann, loc, len(clip), nil)
		if p.status != 204 || p.header.Get(videos.VideoIDHeader) != id || p.header.Get("Upload-Offset") != strconv.Itoa(len(clip)) {
			t.Fatalf("PATCH: %d %v %s", p.status, p.header, p.raw)
		}
	})
}

// At start, the tus expiry pass finishes such uploads; and one whose dead
// attempt had inserted its row and committed its storage is taken up
// again under the same id once that row's lease lapsed (the maintenance
// leaves it to the recovery), charging it once.
func TestTusFinishedAfterARestart(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		tusDir := t.TempDir()
		e := newEnv(t, db, func(c *envConfig) { c.tus = tusDir })
		clip := testVideo(t, 1, 64, 48)
		ann := e.user("user")
		_, id := e.arrivedUnfinished(ann, clip)
		if err := e.tus.Expire(ctx); err != nil {
			t.Fatal(err)
		}
		e.wantFinished(t, ann, id, len(clip))

		// The dead attempt got as far as its storage commit.
		_, id2 := e.arrivedUnfinished(ann, clip)
		var quotaRes string
		if err := db.R.QueryRow(`SELECT quota_res FROM uploads WHERE id = $1`, id2).Scan(&quotaRes); err != nil {
			t.Fatal(err)
		}
		key := "videos/" + id2 + "/video.mp4"
		if err := e.quota.Commit(ctx, quotaRes, int64(len(clip)), key); err != nil {
			t.Fatal(err)
		}
		past := time.Now().Add(-time.Minute).UnixMicro()
		if _, err := db.W.Exec(`INSERT INTO videos (id, owner_id, title, status, size_bytes, video_key, quota_state, quota_at,
created_at, updated_at, lease_until) VALUES ($1, $2, 'cut short', 'processing', $3, $4, 'charging', $5, $5, $5, $5)`,
			id2, ann.id, len(clip), key, past); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
		if err := e.tus.Finish(ctx); err != nil {
			t.Fatal(err)
		}
		v := e.do("GET", "/api/v1/videos/"+id2, ann.token, nil)
		if v.status != 200 || v.video(t)["status"] != "ready" {
			t.Fatalf("the second upload's video: %d %s", v.status, v.raw)
		}
		e.cutPosters()
		e.noLeaks(t, 2)
		if used, _, objects := e.quota.state(ann.id); objects != 4 {
			t.Fatalf("quota used %d in %d objects, want two videos and their posters", used, objects)
		}
		if a := e.actions(); a["UPLOAD_VIDEO:success"] != 2 || a["UPLOAD_VIDEO:failure"] != 0 {
			t.Fatalf("events: %v", a)
		}
		if used, _ := e.limit.state(ann.id); used != int64(2*len(clip)) {
			t.Fatalf("daily volume %d, want %d", used, 2*len(clip))
		}
	}, videos.Migrations(), videos.MigrationTable)
}
