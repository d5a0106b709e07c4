package videos

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

// The feed's first page is read once for the callers that ask together,
// served from memory for at most feedTTL and until a change, per page
// size, and never kept when its read failed.
func TestFirstPages(t *testing.T) {
	ctx := t.Context()
	f := newFirstPages()
	now := time.Now()
	var reads atomic.Int64
	page := []Video{{ID: "a"}, {ID: "b"}}
	var fail error
	read := func(context.Context) ([]Video, error) {
		reads.Add(1)
		time.Sleep(10 * time.Millisecond) // long enough for the others to join
		return page, fail
	}

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			vs, err := f.get(ctx, 16, now, read)
			if err != nil || len(vs) != 2 {
				t.Errorf("get: %v %v", vs, err)
			}
		})
	}
	wg.Wait()
	if n := reads.Load(); n != 1 {
		t.Fatalf("%d reads for 20 callers at once, want 1", n)
	}

	// A caller's copy is its own.
	vs, _ := f.get(ctx, 16, now.Add(feedTTL/2), read)
	vs[0] = Video{ID: "changed by a caller"}
	if vs, _ := f.get(ctx, 16, now.Add(feedTTL/2), read); vs[0].ID != "a" || reads.Load() != 1 {
		t.Fatalf("served %v after %d reads", vs, reads.Load())
	}
	// Another page size is another page.
	if _, _ = f.get(ctx, 4, now, read); reads.Load() != 2 {
		t.Fatalf("%d reads, want another for another size", reads.Load())
	}
	// Too old: read again.
	if _, _ = f.get(ctx, 16, now.Add(feedTTL), read); reads.Load() != 3 {
		t.Fatalf("%d reads, want another after feedTTL", reads.Load())
	}
	// A change: read again, however fresh the page.
	f.changed()
	if _, _ = f.get(ctx, 16, now.Add(feedTTL), read); reads.Load() != 4 {
		t.Fatalf("%d reads, want another after a change", reads.Load())
	}

	// A failed read is answered to its caller and not kept.
	f.changed()
	fail = errors.New("database down")
	if _, err := f.get(ctx, 16, now, read); !errors.Is(err, fail) {
		t.Fatalf("failed read: %v", err)
	}
	fail = nil
	if vs, err := f.get(ctx, 16, now, read); err != nil || len(vs) != 2 || reads.Load() != 6 {
		t.Fatalf("after a failed read: %v %v, %d reads", vs, err, reads.Load())
	}
}

// The feed's first page comes from memory: a video another replica makes
// ready shows within feedTTL, a change made here at once, and later pages
// are read afresh.
func TestFeedFirstPageFromMemory(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		svc, _, _ := testService(t, db)
		ctx := t.Context()
		now := time.Now()
		svc.now = func() time.Time { return now }
		owner := uuid.NewString()
		feed := func(cursor string) page.Page[Video] {
			t.Helper()
			req, err := page.Parse(cursor, "1", defaultPage, maxPage)
			if err != nil {
				t.Fatal(err)
			}
			p, err := svc.Feed(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		first := readyRecord(owner, now.Add(-time.Hour))
		if err := svc.store.insertVideo(ctx, db.W, first); err != nil {
			t.Fatal(err)
		}
		if p := feed(""); len(p.Items) != 1 || p.Items[0].ID != first.ID || p.NextCursor != nil {
			t.Fatalf("first page: %+v", p)
		}

		// Made ready by another replica: not yet, then within feedTTL.
		second := readyRecord(owner, now.Add(-time.Minute))
		if err := svc.store.insertVideo(ctx, db.W, second); err != nil {
			t.Fatal(err)
		}
		if p := feed(""); p.Items[0].ID != first.ID || p.NextCursor != nil {
			t.Fatalf("first page within feedTTL: %+v", p)
		}
		now = now.Add(feedTTL)
		p := feed("")
		if p.Items[0].ID != second.ID || p.NextCursor == nil {
			t.Fatalf("first page after feedTTL: %+v", p)
		}
		// A later page is read afresh.
		if next := feed(*p.NextCursor); len(next.Items) != 1 || next.Items[0].ID != first.ID {
			t.Fatalf("second page: %+v", next)
		}

		// Renamed here: at once.
		title := "renamed here"
		if _, err := svc.Update(ctx, authn.Caller{UserID: owner, Role: authn.RoleUser}, second.ID, Patch{Title: &title}); err != nil {
			t.Fatal(err)
		}
		if p := feed(""); p.Items[0].Title != title {
			t.Fatalf("first page after a rename here: %+v", p.Items[0])
		}
	}, Migrations(), MigrationTable)
}

// A video Get reads is kept for recordTTL: another replica's change shows
// within it, one made here at once.
func TestGetFromMemory(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		svc, _, _ := testService(t, db)
		ctx := t.Context()
		now := time.Now()
		svc.now = func() time.Time { return now }
		owner := authn.Caller{UserID: uuid.NewString(), Role: authn.RoleUser}
		viewer := authn.Caller{UserID: uuid.NewString(), Role: authn.RoleUser}
		r := readyRecord(owner.UserID, now.Add(-time.Hour))
		if err := svc.store.insertVideo(ctx, db.W, r); err != nil {
			t.Fatal(err)
		}
		get := func(c authn.Caller) (Video, error) {
			t.Helper()
			return svc.Get(ctx, c, r.ID)
		}
		if v, err := get(viewer); err != nil || v.Title != r.Title {
			t.Fatalf("get: %+v %v", v, err)
		}

		// Renamed by another replica: the old title within recordTTL.
		if _, err := svc.store.updateVideo(ctx, db.W, r.ID, "renamed elsewhere", "", micros(now)); err != nil {
			t.Fatal(err)
		}
		if v, _ := get(viewer); v.Title != r.Title {
			t.Fatalf("within recordTTL: %q", v.Title)
		}
		now = now.Add(recordTTL)
		if v, _ := get(viewer); v.Title != "renamed elsewhere" {
			t.Fatalf("after recordTTL: %q", v.Title)
		}

		// Trashed here: gone for others at once, still there for its owner.
		if err := svc.Delete(ctx, owner, r.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := get(viewer); !errors.Is(err, ErrVideoNotFound) {
			t.Fatalf("trashed, for another viewer: %v", err)
		}
		if v, err := get(owner); err != nil || v.DeletedAt == nil {
			t.Fatalf("trashed, for its owner: %+v %v", v, err)
		}
	}, Migrations(), MigrationTable)
}
