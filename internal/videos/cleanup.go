package videos

import (
	"context"
	"time"
)

// Clean-up that cannot reach a dependency.
//
// When a failed upload is undone while the storage or usage service is
// down, the undo fails too: its reservations would stay held until they
// expire (ReserveTTL, hours), and its processing row and blobs until the
// maintenance job takes the row for abandoned (staleAfter, hours). So such
// a clean-up is retried in the background, with capped exponential
// backoff, until it succeeds or cleanupRetryFor has passed: every step of
// it is idempotent. Should the process stop first, the expiry of the
// reservations and the maintenance job remain the backstop.
const (
	cleanupRetryFor   = 15 * time.Minute
	cleanupFirstRetry = time.Second
	cleanupMaxWait    = 15 * time.Second
	cleanupAttempt    = time.Minute
	// maxRetrying bounds the clean-ups retrying at once: in a long outage
	// of a busy server, the backstops take the rest rather than memory
	// filling with sleeping goroutines.
	maxRetrying = 1000
)

// cleanUp runs fn now and, if that fails (a service it needs is down),
// again in the background (retryCleanup). attrs name what it cleans up,
// for the log.
func (s *Service) cleanUp(ctx context.Context, what string, attrs []any, fn func(context.Context) error) {
	if err := fn(ctx); err != nil {
		s.log.Warn(what+"; retrying in the background", append(attrs, "err", err)...)
		s.retryCleanup(what, attrs, fn)
	}
}

// retryCleanup runs fn again in the background until it succeeds. attrs
// name what it cleans up, for the log.
func (s *Service) retryCleanup(what string, attrs []any, fn func(context.Context) error) {
	if s.retrying.Add(1) > maxRetrying {
		s.retrying.Add(-1)
		s.log.Error(what+": too many clean-ups retrying already; the reservations' expiry and the maintenance job finish it", attrs...)
		return
	}
	go func() {
		defer s.retrying.Add(-1)
		deadline := time.Now().Add(cleanupRetryFor)
		wait := cleanupFirstRetry
		for attempt := 2; ; attempt++ {
			time.Sleep(wait)
			ctx, cancel := context.WithTimeout(context.Background(), cleanupAttempt)
			err := fn(ctx)
			cancel()
			if err == nil {
				s.log.Info(what+": done on a later attempt", append(attrs, "attempt", attempt)...)
				return
			}
			if time.Now().After(deadline) {
				s.log.Error(what+": still failing, giving up; the reservations' expiry and the maintenance job finish it",
					append(attrs, "attempt", attempt, "err", err)...)
				return
			}
			wait = min(2*wait, cleanupMaxWait)
		}
	}()
}
