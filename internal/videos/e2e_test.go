package videos_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/storage"
	"github.com/reel-video/reel/internal/usage"
	"github.com/reel-video/reel/internal/videos"
)

type realServices struct {
	storage *storage.Service
	usage   *usage.Service
	meter   *usage.EgressMeter
}

// withRealServices runs fn with the storage and usage services on the
// test's database (each in its own tables, as in the all-in-one process).
func withRealServices(t *testing.T, quota, dailyUpload int64, fn func(t *testing.T, e *env, rs *realServices), opts ...func(*envConfig)) {
	var rs *realServices
	withEnv(t, func(t *testing.T, e *env) { fn(t, e, rs) }, append(opts, func(c *envConfig) {
		c.chunk = testChunk
		c.deps = func(db *sqldb.DB) (videos.Quota, videos.UploadLimit, videos.Egress) {
			ctx := context.Background()
			for _, m := range []struct {
				name string
				mig  func() error
			}{
				{"storage", func() error { return sqldb.Migrate(ctx, db, storage.Migrations(), storage.MigrationTable) }},
				{"usage", func() error { return sqldb.Migrate(ctx, db, usage.Migrations(), usage.MigrationTable) }},
			} {
				if err := m.mig(); err != nil {
					t.Fatal(err)
				}
				ob := m.name + "_outbox"
				if err := sqldb.Migrate(ctx, db, outbox.Migrations(ob, db.Dialect), outbox.VersionTable(ob)); err != nil {
					t.Fatal(err)
				}
			}
			rs = &realServices{
				storage: storage.New(db, outbox.New(db, "storage_outbox"), storage.Config{DefaultQuota: quota}, obs.Discard()),
				usage:   usage.New(db, outbox.New(db, "usage_outbox"), usage.Config{DailyUpload: dailyUpload, DailyEgress: 1 << 30}, obs.Discard()),
			}
			rs.meter = usage.NewEgressMeter(rs.usage, usage.MeterConfig{})
			return rs.storage, rs.usage, rs.meter
		}
	})...)
}

func TestEndToEndWithStorageAndUsage(t *testing.T) {
	clip := testVideo(t, 2, 320, 240)
	body, ct := multipartBody(t, map[string]string{"title": "race"}, clip, "a.mp4")
	quota := int64(3 * len(body))
	withRealServices(t, quota, 100<<20, func(t *testing.T, e *env, rs *realServices) {
		ctx := context.Background()
		ann, bob := e.user("user"), e.user("user")

		// Twenty at once against room for about three: the quota holds.
		var wg sync.WaitGroup
		statuses := make([]int, 20)
		for i := range statuses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i] = e.do("POST", "/api/v1/videos", ann.token, body, "Content-Type", ct).status
			}()
		}
		wg.Wait()
		ok := 0
		for _, s := range statuses {
			if s == 201 {
				ok++
			} else if s != 413 {
				t.Fatalf("statuses %v", statuses)
			}
		}
		st, err := rs.storage.Usage(ctx, ann.id)
		if err != nil {
			t.Fatal(err)
		}
		if ok < 1 || st.UsedBytes > quota || st.ReservedBytes != 0 {
			t.Fatalf("%d succeeded; storage %+v (quota %d)", ok, st, quota)
		}
		day, err := rs.usage.Today(ctx, ann.id)
		if err != nil || day.Upload.UsedBytes != int64(ok*len(clip)) || day.Upload.ReservedBytes != 0 {
			t.Fatalf("daily upload %+v (%d uploads of %d) %v", day.Upload, ok, len(clip), err)
		}
		dirs := map[string]bool{}
		for _, f := range e.blobFiles() {
			dirs[filepath.Dir(f)] = true
		}
		if len(dirs) != ok {
			t.Fatalf("blobs of %d videos for %d uploads", len(dirs), ok)
		}

		// Trash frees, restore charges again, exactly.
		mine := e.do("GET", "/api/v1/videos/mine", ann.token, nil)
		id := mine.body["items"].([]any)[0].(map[string]any)["id"].(string)
		if r := e.do("DELETE", "/api/v1/videos/"+id, ann.token, nil); r.status != 204 {
			t.Fatalf("delete: %d", r.status)
		}
		after, _ := rs.storage.Usage(ctx, ann.id)
		if r := e.do("POST", "/api/v1/videos/"+id+"/restore", ann.token, nil); r.status != 200 {
			t.Fatalf("restore: %d %s", r.status, r.raw)
		}
		restored, _ := rs.storage.Usage(ctx, ann.id)
		if restored.UsedBytes != st.UsedBytes || after.UsedBytes >= st.UsedBytes || restored.ReservedBytes != 0 {
			t.Fatalf("used: %d, after delete %d, after restore %d", st.UsedBytes, after.UsedBytes, restored.UsedBytes)
		}

		// The daily upload limit, from the usage service: 429 with
		// Retry-After until midnight UTC.
		if err := rs.usage.SetLimits(ctx, bob.id, usage.Limits{DailyUpload: ptr(int64(len(body) + 100))}); err != nil {
			t.Fatal(err)
		}
		e.mustUpload(bob, "first", clip)
		if r := e.upload(bob, "second", clip); r.status != 429 || r.code() != "daily_limit_reached" || r.header.Get("Retry-After") == "" {
			t.Fatalf("over the daily limit: %d %v %s", r.status, r.header, r.raw)
		}

		// Egress through the real meter, flushed to the usage service.
		if err := rs.usage.SetLimits(ctx, bob.id, usage.Limits{DailyEgress: ptr(int64(5000))}); err != nil {
			t.Fatal(err)
		}
		url, _ := e.play(bob, id)
		var got int
		for i, want := range []int{206, 206, 429} {
			r := e.do("GET", url, "", nil, "Range", fmt.Sprintf("bytes=%d-", i*testChunk))
			if r.status != want {
				t.Fatalf("request %d: %d %s", i, r.status, r.raw)
			}
			if r.status == 206 {
				got += len(r.raw)
			}
			// Counted once written, which may be just after the client
			// read it.
			eventually(t, 5*time.Second, func() string {
				if p := rs.meter.Pending(bob.id); p != int64(got) {
					return fmt.Sprintf("meter has %d, want %d", p, got)
				}
				return ""
			})
		}
		if err := rs.meter.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		day, _ = rs.usage.Today(ctx, bob.id)
		if day.Egress.UsedBytes != int64(got) || got != 2*testChunk {
			t.Fatalf("egress recorded %d, sent %d", day.Egress.UsedBytes, got)
		}
	})
}

func ptr[T any](v T) *T { return &v }
