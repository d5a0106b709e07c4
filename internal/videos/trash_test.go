package videos_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/errs"
)

func TestManageAndPermissions(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		clip := testVideo(t, 1, 64, 48)
		ann, bob, admin := e.user("user"), e.user("user"), e.user("admin")
		id := e.mustUpload(ann, "mine", clip)
		path := "/api/v1/videos/" + id

		// Another user sees it but may not change it: 404, as if absent.
		for _, c := range []struct{ method, path string }{{"PATCH", path}, {"DELETE", path}, {"POST", path + "/restore"}} {
			var body any
			if c.method == "PATCH" {
				body = map[string]string{"title": "stolen"}
			}
			if r := e.do(c.method, c.path, bob.token, body); r.status != 404 {
				t.Fatalf("%s by someone else: %d", c.method, r.status)
			}
		}
		if r := e.do("PATCH", path, admin.token, map[string]string{"title": "Renamed by admin"}); r.status != 200 || r.video(t)["title"] != "Renamed by admin" {
			t.Fatalf("admin patch: %d %s", r.status, r.raw)
		}
		if r := e.do("PATCH", path, ann.token, map[string]string{"description": "mine after all"}); r.status != 200 ||
			r.video(t)["description"] != "mine after all" || r.video(t)["title"] != "Renamed by admin" {
			t.Fatalf("owner patch: %d %s", r.status, r.raw)
		}
		if r := e.do("PATCH", path, ann.token, map[string]string{"title": " "}); r.status != 422 {
			t.Fatalf("blank title: %d", r.status)
		}
		if r := e.do("PATCH", path, ann.token, map[string]string{"owner_id": bob.id}); r.status != 400 {
			t.Fatalf("unknown field: %d", r.status)
		}
		for _, bad := range []string{"/api/v1/videos/nope", "/api/v1/videos/" + strings.ToUpper(id), "/api/v1/videos/00000000-0000-7000-8000-000000000000"} {
			if r := e.do("GET", bad, ann.token, nil); r.status != 404 {
				t.Fatalf("GET %s: %d", bad, r.status)
			}
		}
		if r := e.do("GET", "/api/v1/videos", "", nil); r.status != 401 {
			t.Fatalf("anonymous feed: %d", r.status)
		}
		if a := e.actions(); a["UPDATE_VIDEO:success"] != 2 || a["FETCH_VIDEOS:success"] != 0 {
			t.Fatalf("events %v", a)
		}
		e.do("GET", "/api/v1/videos", ann.token, nil)
		e.do("GET", "/api/v1/videos/mine", ann.token, nil)
		if a := e.actions(); a["FETCH_VIDEOS:success"] != 2 {
			t.Fatalf("events %v", a)
		}
		// An admin may trash and restore someone's video; the bytes move
		// in the owner's quota.
		if r := e.do("DELETE", path, admin.token, nil); r.status != 204 {
			t.Fatalf("admin delete: %d", r.status)
		}
		if used, _, _ := e.quota.state(ann.id); used != 0 {
			t.Fatalf("used after admin delete: %d", used)
		}
		if r := e.do("POST", path+"/restore", admin.token, nil); r.status != 200 {
			t.Fatalf("admin restore: %d %s", r.status, r.raw)
		}
		if used, _, _ := e.quota.state(ann.id); used <= int64(len(clip)) {
			t.Fatalf("used after admin restore: %d", used)
		}
	})
}

func TestTrashRestorePurge(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		clip := testVideo(t, 1, 64, 48)
		ann := e.user("user")
		v1 := e.mustUpload(ann, "one", clip)
		v2 := e.mustUpload(ann, "two", clip)
		full, _, _ := e.quota.state(ann.id)
		one := full / 2

		// Delete moves to the trash; again is 204; the bytes stop counting.
		for i := 0; i < 2; i++ {
			if r := e.do("DELETE", "/api/v1/videos/"+v1, ann.token, nil); r.status != 204 {
				t.Fatalf("delete #%d: %d %s", i, r.status, r.raw)
			}
		}
		if used, _, _ := e.quota.state(ann.id); used != full-one {
			t.Fatalf("used after delete %d, want %d", used, full-one)
		}
		if a := e.actions(); a["DELETE_VIDEO:success"] != 1 {
			t.Fatalf("DELETE_VIDEO once: %v", a)
		}
		feed := e.do("GET", "/api/v1/videos", ann.token, nil)
		if items := feed.body["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != v2 {
			t.Fatalf("feed after delete: %s", feed.raw)
		}
		if g := e.do("GET", "/api/v1/videos/"+v1, ann.token, nil); g.status != 200 || g.video(t)["deleted_at"] == nil {
			t.Fatalf("owner gets trashed video: %d %s", g.status, g.raw)
		}
		if g := e.do("GET", "/api/v1/videos/"+v1, e.user("user").token, nil); g.status != 404 {
			t.Fatalf("others get trashed video: %d", g.status)
		}
		trash := e.do("GET", "/api/v1/trash", ann.token, nil)
		items := trash.body["items"].([]any)
		if len(items) != 1 {
			t.Fatalf("trash: %s", trash.raw)
		}
		item := items[0].(map[string]any)
		deletedAt, _ := time.Parse(time.RFC3339, item["deleted_at"].(string))
		purgeAt, _ := time.Parse(time.RFC3339, item["purge_at"].(string))
		if purgeAt.Sub(deletedAt) != 30*24*time.Hour {
			t.Fatalf("purge_at %v for deleted_at %v", purgeAt, deletedAt)
		}

		// Restore needs room in the quota: 413 without it, and nothing
		// changes.
		e.quota.mu.Lock()
		e.quota.limit = full - one + one/2
		e.quota.mu.Unlock()
		if r := e.do("POST", "/api/v1/videos/"+v1+"/restore", ann.token, nil); r.status != 413 || r.code() != "quota_exceeded" {
			t.Fatalf("restore without room: %d %s", r.status, r.raw)
		}
		if used, held, _ := e.quota.state(ann.id); used != full-one || held != 0 {
			t.Fatalf("after a refused restore: used %d, %d held", used, held)
		}
		e.quota.mu.Lock()
		e.quota.limit = -1
		e.quota.mu.Unlock()
		r := e.do("POST", "/api/v1/videos/"+v1+"/restore", ann.token, nil)
		if r.status != 200 || r.video(t)["deleted_at"] != nil {
			t.Fatalf("restore: %d %s", r.status, r.raw)
		}
		if used, held, _ := e.quota.state(ann.id); used != full || held != 0 {
			t.Fatalf("after restore: used %d (want %d), %d held", used, full, held)
		}
		if r := e.do("POST", "/api/v1/videos/"+v1+"/restore", ann.token, nil); r.status != 200 {
			t.Fatalf("restore a live video: %d", r.status)
		}

		// Delete all.
		if r := e.do("DELETE", "/api/v1/videos", ann.token, nil); r.status != 200 || r.body["deleted"] != float64(2) {
			t.Fatalf("delete all: %d %s", r.status, r.raw)
		}
		if used, _, _ := e.quota.state(ann.id); used != 0 {
			t.Fatalf("used after delete all: %d", used)
		}
		if r := e.do("DELETE", "/api/v1/videos", ann.token, nil); r.body["deleted"] != float64(0) {
			t.Fatalf("delete all again: %s", r.raw)
		}
		freed := e.quota.freed

		// Purge: not before the retention, then blobs and rows go, and
		// nothing is freed again.
		if n, err := e.svc.Purge(context.Background()); err != nil || n != 0 {
			t.Fatalf("early purge: %d %v", n, err)
		}
		e.advance(30*24*time.Hour + time.Minute)
		if n, err := e.svc.Purge(context.Background()); err != nil || n != 2 {
			t.Fatalf("purge: %d %v", n, err)
		}
		if got := e.blobFiles(); len(got) != 0 {
			t.Fatalf("blobs after purge: %v", got)
		}
		if trash := e.do("GET", "/api/v1/trash", ann.token, nil); len(trash.body["items"].([]any)) != 0 {
			t.Fatalf("trash after purge: %s", trash.raw)
		}
		if r := e.do("POST", "/api/v1/videos/"+v2+"/restore", ann.token, nil); r.status != 404 {
			t.Fatalf("restore after purge: %d", r.status)
		}
		if e.quota.freed != freed {
			t.Fatalf("purge freed bytes again")
		}
		if a := e.actions(); a["PURGE_VIDEO:success"] != 2 || a["DELETE_ALL_VIDEOS:success"] != 2 || a["RESTORE_VIDEO:success"] != 1 {
			t.Fatalf("events %v", a)
		}
	})
}

// flakyBlobs fails the first Delete of a poster, as a crash would
// interrupt a purge after the video's blob is gone.
type flakyBlobs struct {
	blob.Store
	mu    sync.Mutex
	fails int
}

func (f *flakyBlobs) Delete(ctx context.Context, key string) error {
	f.mu.Lock()
	fail := f.fails > 0 && strings.HasSuffix(key, "/poster.jpg")
	if fail {
		f.fails--
	}
	f.mu.Unlock()
	if fail {
		return errors.New("disk on fire")
	}
	return f.Store.Delete(ctx, key)
}

func TestPurgeInterruptedAndRerun(t *testing.T) {
	var flaky *flakyBlobs
	withEnv(t, func(t *testing.T, e *env) {
		clip := testVideo(t, 1, 64, 48)
		ann := e.user("user")
		id := e.mustUpload(ann, "doomed", clip)
		keep := e.mustUpload(ann, "kept", clip)
		if r := e.do("DELETE", "/api/v1/videos/"+id, ann.token, nil); r.status != 204 {
			t.Fatal(r.status)
		}
		freed := e.quota.freed
		e.advance(31 * 24 * time.Hour)
		flaky.fails = 1
		if _, err := e.svc.Purge(context.Background()); err == nil {
			t.Fatal("the interrupted purge reported no error")
		}
		// Half-way: the video's blob is gone, the poster and the row are
		// not; the video can no longer be restored.
		if got := e.blobFiles(); len(got) != 3 {
			t.Fatalf("blobs half-way: %v", got)
		}
		if r := e.do("POST", "/api/v1/videos/"+id+"/restore", ann.token, nil); r.status != 404 {
			t.Fatalf("restore of a video being purged: %d %s", r.status, r.raw)
		}
		if n, err := e.svc.Purge(context.Background()); err != nil || n != 1 {
			t.Fatalf("rerun: %d %v", n, err)
		}
		if got := e.blobFiles(); len(got) != 2 || !strings.Contains(strings.Join(got, " "), keep) {
			t.Fatalf("blobs after the rerun: %v", got)
		}
		if n, err := e.svc.Purge(context.Background()); err != nil || n != 0 {
			t.Fatalf("third run: %d %v", n, err)
		}
		if a := e.actions(); a["PURGE_VIDEO:success"] != 1 {
			t.Fatalf("PURGE_VIDEO once: %v", a)
		}
		if e.quota.freed != freed {
			t.Fatal("the purge freed bytes again")
		}
	}, func(c *envConfig) {
		c.blobs = func(s blob.Store) blob.Store { flaky = &flakyBlobs{Store: s}; return flaky }
	})
}

// When the storage service cannot free a trashed video's bytes, the delete
// says so (503) and a retry or the maintenance job finishes it, freeing
// once.
func TestTrashFreeRetried(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		clip := testVideo(t, 1, 64, 48)
		ann := e.user("user")
		a := e.mustUpload(ann, "a", clip)
		b := e.mustUpload(ann, "b", clip)
		full, _, _ := e.quota.state(ann.id)
		e.quota.failFree = errs.ErrUnavailable
		r := e.do("DELETE", "/api/v1/videos/"+a, ann.token, nil)
		if r.status != 503 || r.header.Get("Retry-After") == "" {
			t.Fatalf("delete while storage is down: %d %v", r.status, r.header)
		}
		if r := e.do("DELETE", "/api/v1/videos/"+b, ann.token, nil); r.status != 503 {
			t.Fatalf("delete b: %d", r.status)
		}
		// Both are in the trash already; their bytes still count.
		if feed := e.do("GET", "/api/v1/videos/mine", ann.token, nil); len(feed.body["items"].([]any)) != 0 {
			t.Fatalf("mine: %s", feed.raw)
		}
		if used, _, _ := e.quota.state(ann.id); used != full {
			t.Fatalf("used %d", used)
		}
		e.quota.failFree = nil
		if r := e.do("DELETE", "/api/v1/videos/"+a, ann.token, nil); r.status != 204 {
			t.Fatalf("retried delete: %d", r.status)
		}
		e.advance(2 * time.Minute)
		if err := e.svc.Maintain(context.Background()); err != nil {
			t.Fatal(err)
		}
		if used, _, _ := e.quota.state(ann.id); used != 0 {
			t.Fatalf("used after the retries: %d", used)
		}
		if e.quota.freed != 4 {
			t.Fatalf("%d objects freed, want 4 (two videos, two posters)", e.quota.freed)
		}
		if a := e.actions(); a["DELETE_VIDEO:success"] != 2 {
			t.Fatalf("events %v", a)
		}
	})
}

func TestFeedPagesOverHTTP(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		clip := testVideo(t, 1, 64, 48)
		ann, bob := e.user("user"), e.user("user")
		ids := []string{e.mustUpload(ann, "a", clip), e.mustUpload(bob, "b", clip), e.mustUpload(ann, "c", clip)}
		var got []string
		cursor := ""
		for page := 0; page < 5; page++ {
			r := e.do("GET", "/api/v1/videos?limit=2&cursor="+cursor, bob.token, nil)
			if r.status != 200 {
				t.Fatalf("page: %d %s", r.status, r.raw)
			}
			for _, it := range r.body["items"].([]any) {
				got = append(got, it.(map[string]any)["id"].(string))
			}
			next, _ := r.body["next_cursor"].(string)
			if next == "" {
				break
			}
			cursor = next
		}
		if strings.Join(got, ",") != ids[2]+","+ids[1]+","+ids[0] {
			t.Fatalf("feed order %v, want newest first of %v", got, ids)
		}
		mine := e.do("GET", "/api/v1/videos/mine?limit=100", ann.token, nil)
		if items := mine.body["items"].([]any); len(items) != 2 {
			t.Fatalf("mine: %s", mine.raw)
		}
		for _, bad := range []string{"limit=0", "limit=x", "cursor=%21%21"} {
			if r := e.do("GET", "/api/v1/videos?"+bad, ann.token, nil); r.status != 400 {
				t.Fatalf("%s: %d", bad, r.status)
			}
		}
		if r := e.do("GET", "/api/v1/videos?limit=5000", ann.token, nil); r.status != 200 {
			t.Fatalf("a large limit is capped, not refused: %d", r.status)
		}
		// The trash pages by deletion time.
		for _, id := range []string{ids[0], ids[2]} {
			if r := e.do("DELETE", "/api/v1/videos/"+id, ann.token, nil); r.status != 204 {
				t.Fatal(r.status)
			}
		}
		first := e.do("GET", "/api/v1/trash?limit=1", ann.token, nil)
		next, _ := first.body["next_cursor"].(string)
		second := e.do("GET", "/api/v1/trash?limit=1&cursor="+next, ann.token, nil)
		a := first.body["items"].([]any)[0].(map[string]any)["id"]
		b := second.body["items"].([]any)[0].(map[string]any)["id"]
		if a != ids[2] || b != ids[0] || second.body["next_cursor"] != nil {
			t.Fatalf("trash pages: %v then %v", a, b)
		}
		if r := e.do("GET", "/api/v1/trash", bob.token, nil); len(r.body["items"].([]any)) != 0 {
			t.Fatalf("bob sees ann's trash: %s", r.raw)
		}
	})
}
