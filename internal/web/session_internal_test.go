package web

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/users"
)

// rotator is a users service that only refreshes, counting its rotations.
type rotator struct {
	Users
	calls   atomic.Int32
	release chan struct{}
	err     error
}

func (r *rotator) Refresh(_ context.Context, token string) (users.Tokens, error) {
	n := r.calls.Add(1)
	if r.release != nil {
		<-r.release
	}
	if r.err != nil {
		return users.Tokens{}, r.err
	}
	return users.Tokens{AccessToken: "access", RefreshToken: token + "+" + string(rune('0'+n))}, nil
}

// A token presented again while its rotation runs, or within the grace
// window after, gets the same answer from one rotation; later, the users
// service judges it again.
func TestRefresherSharesOneRotation(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	u := &rotator{release: make(chan struct{})}
	f := newRefresher(u, clock)

	results := make(chan users.Tokens, 8)
	for range 8 {
		go func() {
			tk, err := f.refresh(context.Background(), "old")
			if err != nil {
				t.Error(err)
			}
			results <- tk
		}()
	}
	for u.calls.Load() == 0 { // the first caller is in Refresh
		time.Sleep(time.Millisecond)
	}
	close(u.release)
	for range 8 {
		if tk := <-results; tk.RefreshToken != "old+1" {
			t.Fatalf("concurrent callers got %q", tk.RefreshToken)
		}
	}
	if tk, _ := f.refresh(context.Background(), "old"); tk.RefreshToken != "old+1" || u.calls.Load() != 1 {
		t.Fatalf("within the grace window: %q after %d rotations", tk.RefreshToken, u.calls.Load())
	}
	mu.Lock()
	now = now.Add(refreshGrace + time.Second)
	mu.Unlock()
	if tk, _ := f.refresh(context.Background(), "old"); tk.RefreshToken != "old+2" || u.calls.Load() != 2 {
		t.Fatalf("after the grace window: %q after %d rotations", tk.RefreshToken, u.calls.Load())
	}
	if len(f.calls) != 1 {
		t.Fatalf("%d answers kept, want only the last", len(f.calls))
	}
}

// A refusal is shared like an answer; a passing failure is not kept.
func TestRefresherFailures(t *testing.T) {
	u := &rotator{err: errs.ErrUnavailable}
	f := newRefresher(u, time.Now)
	for range 2 {
		if _, err := f.refresh(context.Background(), "t"); errs.KindOf(err) != errs.Unavailable {
			t.Fatal(err)
		}
	}
	if u.calls.Load() != 2 {
		t.Fatalf("an unavailable users service was asked %d times, want 2", u.calls.Load())
	}
	u.err = users.ErrInvalidRefresh
	for range 2 {
		if _, err := f.refresh(context.Background(), "t2"); errs.KindOf(err) != errs.Unauthenticated {
			t.Fatal(err)
		}
	}
	if u.calls.Load() != 3 {
		t.Fatalf("a refused token was judged %d times, want once", u.calls.Load()-2)
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "/",
		"/":                    "/",
		"/mine?cursor=x":       "/mine?cursor=x",
		"/watch/abc#t":         "/watch/abc#t",
		"//evil.example":       "/",
		"/\\evil.example":      "/",
		"https://evil.example": "/",
		"evil":                 "/",
		"/auth/logout":         "/",
		"/auth/refresh?x":      "/",
		"/a\r\nSet-Cookie:x":   "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFormats(t *testing.T) {
	for n, want := range map[int64]string{0: "0 bytes", 1023: "1023 bytes", 1024: "1 KiB", 1536: "1.5 KiB", 50 << 20: "50 MiB", 150 << 20: "150 MiB", 1<<30 + 1<<29: "1.5 GiB"} {
		if got := fmtBytes(n); got != want {
			t.Errorf("fmtBytes(%d) = %q, want %q", n, got, want)
		}
	}
	for s, want := range map[float64]string{0: "0:00", 2.4: "0:02", 61: "1:01", 3600: "1:00:00", 3725: "1:02:05"} {
		if got := fmtDuration(s); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", s, got, want)
		}
	}
	for d, want := range map[time.Duration]string{30 * time.Second: "30 s", 5 * time.Minute: "5 min", 5*time.Hour + 12*time.Minute: "5 h 12 min", 30 * 24 * time.Hour: "30 days", 30*24*time.Hour - time.Minute: "30 days"} {
		if got := fmtUntil(d); got != want {
			t.Errorf("fmtUntil(%v) = %q, want %q", d, got, want)
		}
	}
	if sentence("the email is wrong") != "The email is wrong." || sentence("") != "" {
		t.Error("sentence")
	}
}
