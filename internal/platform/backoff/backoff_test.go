package backoff_test

import (
	"context"
	"errors"
	"testing"
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

func TestSleep(t *testing.T) {
	if err := backoff.Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
	if err := backoff.Sleep(context.Background(), 0); err != nil {
		t.Fatalf("Sleep(0) = %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := backoff.Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep(0) on an ended context = %v, want context.Canceled", err)
	}

	// A sleep far longer than the test must end with its context.
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- backoff.Sleep(ctx, time.Hour) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Sleep = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Sleep did not end with its context")
	}
}
