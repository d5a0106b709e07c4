// Package backoff holds the waits between retries: a jittered exponential
// delay, and a sleep that ends early when its context does.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// maxShift bounds the doubling so that a long run of retries cannot
// overflow the delay.
const maxShift = 30

// Delay is the wait before retry n (1 for the first): base doubled for
// each earlier retry, plus up to base of random jitter so that callers
// that failed together (a restarting service's clients) do not come back
// in lockstep. It is 0 when base or n is not positive.
func Delay(base time.Duration, n int) time.Duration {
	if base <= 0 || n < 1 {
		return 0
	}
	return base<<min(n-1, maxShift) + rand.N(base)
}

// Sleep waits d, or less if ctx ends first; it returns ctx's error when
// it does, so that a caller can give up at once. A d of zero or less
// only checks ctx.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
