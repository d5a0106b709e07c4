package backoff_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reel-video/reel/internal/platform/backoff"
)

func TestDelay(t *testing.T) {
	const base = 100 * time.Millisecond
	for n, floor := range map[int]time.Duration{1: base, 2: 2 * base, 3: 4 * base, 5: 16 * base} {
		for range 200 {
			if d := backoff.Delay(base, n); d < floor || d >= floor+base {
				t.Fatalf("Delay(%v, %d) = %v, want in [%v, %v)", base, n, d, floor, floor+base)
			}
		}
	}
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[backoff.Delay(base, 1)] = true
	}
	if len(seen) < 2 {
		t.Error("Delay has no jitter: 50 draws gave one value")
	}
	for _, c := range []struct {
		base time.Duration
		n    int
	}{{0, 1}, {-time.Second, 3}, {base, 0}, {base, -1}} {
		if d := backoff.Delay(c.base, c.n); d != 0 {
			t.Errorf("Delay(%v, %d) = %v, want 0", c.base, c.n, d)
		}
	}
	if d := backoff.Delay(time.Nanosecond, 1000); d <= 0 {
		t.Errorf("Delay after 1000 retries = %v: the doubling overflowed", d)
	}
}

// TestSleep runs in a synctest bubble, whose clock moves only when every
// goroutine waits: a sleep takes exactly its time, and one of an hour
// ends with its context, not with the hour.
func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := backoff.Sleep(t.Context(), time.Second); err != nil {
			t.Fatalf("Sleep = %v", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Fatalf("Sleep(1s) took %v", d)
		}
		if err := backoff.Sleep(t.Context(), 0); err != nil {
			t.Fatalf("Sleep(0) = %v", err)
		}
		if time.Since(start) != time.Second {
			t.Fatal("Sleep(0) waited")
		}

		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := backoff.Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
			t.Fatalf("Sleep(0) on an ended context = %v, want context.Canceled", err)
		}

		// A sleep of an hour ends with its context, a minute in.
		ctx, cancel = context.WithCancel(t.Context())
		time.AfterFunc(time.Minute, cancel)
		start = time.Now()
		if err := backoff.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
			t.Fatalf("Sleep = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d != time.Minute {
			t.Fatalf("Sleep ended %v in, want with its context a minute in", d)
		}
	})
}
