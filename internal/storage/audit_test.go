package storage_test

import (
	"errors"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/authn/authntest"
	"github.com/reel-video/reel/internal/platform/reserve"
	"github.com/reel-video/reel/internal/storage"
)

func (h *harness) account(t *testing.T, user string) reserve.Account {
	t.Helper()
	after := ""
	for {
		page, err := h.q.Accounts(t.Context(), after, 2) // small pages: paging is tested too
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page {
			if a.UserID == user {
				return a
			}
		}
		if len(page) < 2 {
			t.Fatalf("no account of %s listed", user)
		}
		after = page[len(page)-1].UserID
	}
}

func (h *harness) correct(t *testing.T, user string, want int, fixes ...reserve.Correction) {
	t.Helper()
	n, err := h.q.Correct(t.Context(), user, fixes)
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("Correct applied %d, want %d", n, want)
	}
}

// TestAudit: what the check reads (accounts with their objects' sums,
// objects, lapsed reservations) and corrects, in process and over HTTP.
func TestAudit(t *testing.T) {
	implementations(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		user := authntest.NewUserID()
		r := h.reserve(t, user, 100)
		if err := h.q.Commit(ctx, r.ID, 100, "videos/a/video.mp4"); err != nil {
			t.Fatal(err)
		}
		if err := h.q.Charge(ctx, user, "videos/a/poster.jpg", 10); err != nil {
			t.Fatal(err)
		}
		a := h.account(t, user)
		if a.UsedBytes != 110 || a.ObjectBytes != 110 || a.Objects != 2 || !a.Changed.Equal(h.clock.Now()) {
			t.Fatalf("account = %+v, want 110 used in 2 objects changed now", a)
		}
		objs, err := h.q.Objects(ctx, user, "", 1)
		if err != nil || len(objs) != 1 || objs[0].Key != "videos/a/poster.jpg" || objs[0].Bytes != 10 {
			t.Fatalf("first page of objects = %+v, %v", objs, err)
		}
		objs, err = h.q.Objects(ctx, user, objs[0].Key, 10)
		if err != nil || len(objs) != 1 || objs[0].Key != "videos/a/video.mp4" || objs[0].Bytes != 100 {
			t.Fatalf("second page of objects = %+v, %v", objs, err)
		}

		// The account counts 7 bytes too many: Correct recounts it.
		if _, err := h.db.W.ExecContext(ctx, `UPDATE storage_accounts SET used = used + 7 WHERE user_id = $1`, user); err != nil {
			t.Fatal(err)
		}
		if a := h.account(t, user); a.UsedBytes != 117 || a.ObjectBytes != 110 {
			t.Fatalf("tampered account = %+v", a)
		}
		h.correct(t, user, 0)
		h.wantUsage(t, user, 110, 0)

		// Corrections apply only to the bytes they were made from.
		h.correct(t, user, 1,
			reserve.Correction{Key: "videos/a/video.mp4", Was: 100, Bytes: 90},
			reserve.Correction{Key: "videos/a/poster.jpg", Was: 11, Bytes: -1}, // stale: left alone
			reserve.Correction{Key: "videos/a/never", Was: 3, Bytes: 4})
		h.wantUsage(t, user, 100, 0)
		h.correct(t, user, 1, reserve.Correction{Key: "videos/a/new.jpg", Was: -1, Bytes: 5})
		h.wantUsage(t, user, 105, 0)
		h.correct(t, user, 0, reserve.Correction{Key: "videos/a/new.jpg", Was: -1, Bytes: 6}) // it exists now
		h.correct(t, user, 2,
			reserve.Correction{Key: "videos/a/new.jpg", Was: 5, Bytes: -1},
			reserve.Correction{Key: "videos/a/poster.jpg", Was: 10, Bytes: -1})
		h.wantUsage(t, user, 90, 0)
		if a := h.account(t, user); a.ObjectBytes != 90 || a.Objects != 1 {
			t.Fatalf("corrected account = %+v", a)
		}

		// A reservation past its time until the sweep releases it.
		if err := h.q.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		before, err := h.q.Lapsed(ctx, 0)
		if err != nil || before.Count != 0 {
			t.Fatalf("lapsed after a sweep = %+v, %v", before, err)
		}
		if _, err := h.q.Reserve(ctx, user, 50, time.Minute); err != nil {
			t.Fatal(err)
		}
		h.clock.Advance(time.Hour)
		if l, err := h.q.Lapsed(ctx, 0); err != nil || l.Count != 1 || l.Bytes != 50 {
			t.Fatalf("lapsed = %+v, %v; want one of 50 bytes", l, err)
		}
		if l, err := h.q.Lapsed(ctx, 2*time.Hour); err != nil || l.Count != 0 {
			t.Fatalf("lapsed more than 2h ago = %+v, %v; want none", l, err)
		}
		h.wantUsage(t, user, 90, 50)
		if err := h.q.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if l, err := h.q.Lapsed(ctx, 0); err != nil || l.Count != 0 {
			t.Fatalf("lapsed after the sweep = %+v, %v", l, err)
		}
		h.wantUsage(t, user, 90, 0)

		// Bad arguments are refused as such.
		if _, err := h.q.Objects(ctx, "not-a-uuid", "", 10); !errors.Is(err, storage.ErrInvalidUserID) {
			t.Errorf("Objects of a bad user id: %v", err)
		}
		if _, err := h.q.Accounts(ctx, "", 0); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("Accounts with limit 0: %v", err)
		}
		if _, err := h.q.Correct(ctx, user, []reserve.Correction{{Key: "k", Was: -2, Bytes: 1}}); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("Correct with a bad byte count: %v", err)
		}
	})
}
