package videos_test

import (
	"context"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
	"github.com/reel-video/reel/internal/videos"
)

// Media lookups are cached, but a video trashed through this process stops
// playing at once, and one trashed elsewhere (another replica on the same
// database) within the cache's two seconds.
func TestMediaCacheForgetsDeletedVideos(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		e := newEnv(t, db)
		other := newEnv(t, db) // a second replica: its own cache, the same rows
		clip := testVideo(t, 1, 64, 48)
		ann := e.user("user")
		ctx := context.Background()

		// Trashed here: the next range request is refused.
		id := e.mustUpload(ann, "here", clip)
		url, poster := e.play(ann, id)
		for _, u := range []string{url, poster, url} {
			if r := e.do("GET", u, "", nil, "Range", "bytes=0-9"); r.status != 206 {
				t.Fatalf("before delete: %d %s", r.status, r.raw)
			}
		}
		if r := e.do("DELETE", "/api/v1/videos/"+id, ann.token, nil); r.status != 204 {
			t.Fatalf("delete: %d %s", r.status, r.raw)
		}
		for _, u := range []string{url, poster} {
			if r := e.do("GET", u, "", nil, "Range", "bytes=0-9"); r.status != 404 {
				t.Fatalf("right after delete: %d %s", r.status, r.raw)
			}
		}
		// Restored: it plays again (nothing negative was cached).
		if r := e.do("POST", "/api/v1/videos/"+id+"/restore", ann.token, nil); r.status != 200 {
			t.Fatalf("restore: %d %s", r.status, r.raw)
		}
		if r := e.do("GET", url, "", nil, "Range", "bytes=0-9"); r.status != 206 {
			t.Fatalf("after restore: %d %s", r.status, r.raw)
		}

		// Delete-all through this process forgets every video.
		id2 := e.mustUpload(ann, "all", clip)
		url2, _ := e.play(ann, id2)
		if r := e.do("GET", url2, "", nil, "Range", "bytes=0-9"); r.status != 206 {
			t.Fatalf("before delete-all: %d", r.status)
		}
		if _, err := e.svc.DeleteAll(ctx, ann.caller("user")); err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{url, url2} {
			if r := e.do("GET", u, "", nil, "Range", "bytes=0-9"); r.status != 404 {
				t.Fatalf("after delete-all: %d %s", r.status, r.raw)
			}
		}

		// Trashed by the other replica: served from the cache for at most
		// its lifetime, then refused.
		id3 := e.mustUpload(ann, "elsewhere", clip)
		url3, _ := e.play(ann, id3)
		if r := e.do("GET", url3, "", nil, "Range", "bytes=0-9"); r.status != 206 {
			t.Fatalf("before remote delete: %d", r.status)
		}
		if err := other.svc.Delete(ctx, ann.caller("user"), id3); err != nil {
			t.Fatal(err)
		}
		if r := e.do("GET", url3, "", nil, "Range", "bytes=0-9"); r.status != 206 {
			t.Fatalf("cached within its lifetime: %d", r.status)
		}
		e.advance(2*time.Second + time.Millisecond)
		if r := e.do("GET", url3, "", nil, "Range", "bytes=0-9"); r.status != 404 {
			t.Fatalf("after the cache lifetime: %d %s", r.status, r.raw)
		}
	}, videos.Migrations(), videos.MigrationTable)
}
