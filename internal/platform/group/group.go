// Package group lets concurrent callers share one run of costly work.
//
// Some work costs mostly a fixed price per run, whatever the number of
// items: starting ffmpeg, one INSERT and its commit. A Runner queues the items of callers that cannot
// start at once, and whoever starts next runs every queued item together,
// up to a bound. A lone caller still runs at once; under load the fixed
// price is shared. There is no goroutine of its own: a caller does the
// run, so nothing needs starting or stopping.
package group

import (
	"context"
	"sync"
	"time"
)

// Runner runs items in batches. Its methods are safe for concurrent use.
type Runner[T, R any] struct {
	slots  chan struct{}
	max    int
	run    func(ctx context.Context, items []T) []R
	linger time.Duration

	mu    sync.Mutex
	queue []*call[T, R]
}

type call[T, R any] struct {
	item  T
	taken bool   // a run holds it; guarded by Runner.mu
	done  chan R // buffered: the run never waits on the caller
}

// New returns a Runner. A run holds one of slots for its duration (a
// channel's capacity is how many runs may go on at once; the channel may
// bound other work on the same resource too). most bounds the items of one
// run. run gets the items in the order they were queued and returns one
// result per item, in the same order.
func New[T, R any](slots chan struct{}, most int, run func(ctx context.Context, items []T) []R) *Runner[T, R] {
	return &Runner[T, R]{slots: slots, max: max(1, most), run: run}
}

// WithLinger makes a run that starts with fewer than the most items wait
// d for more before it takes them: larger runs for callers who can spare
// the delay (work done in the background). It returns g; call it before
// g is used.
func (g *Runner[T, R]) WithLinger(d time.Duration) *Runner[T, R] {
	g.linger = d
	return g
}

// Do queues item and returns its result, from a run made by this caller
// or another. When ctx ends before a run has taken the item, Do returns
// ctx's error and the item is never run; once a run has it, Do waits for
// its result even if ctx ends, so that no work on the item goes on after
// Do returned. A run's context is that of the caller making it, without
// its cancellation: the other callers still want their results, so run
// must bound its own time.
func (g *Runner[T, R]) Do(ctx context.Context, item T) (R, error) {
	c := &call[T, R]{item: item, done: make(chan R, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	g.mu.Unlock()
	for {
		if g.isTaken(c) {
			return <-c.done, nil
		}
		select {
		case r := <-c.done:
			return r, nil
		case <-ctx.Done():
			if g.withdraw(c) {
				var zero R
				return zero, ctx.Err()
			}
			// Taken meanwhile: the loop waits for its run.
		case g.slots <- struct{}{}:
			if g.linger > 0 && g.Queued() < g.max {
				time.Sleep(g.linger)
			}
			if batch := g.take(); len(batch) > 0 {
				items := make([]T, len(batch))
				for i, b := range batch {
					items[i] = b.item
				}
				results := g.run(context.WithoutCancel(ctx), items)
				for i, b := range batch {
					b.done <- results[i]
				}
			}
			<-g.slots
		}
	}
}

// Queued returns how many items wait for a run.
func (g *Runner[T, R]) Queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

func (g *Runner[T, R]) take() []*call[T, R] {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := min(g.max, len(g.queue))
	batch := make([]*call[T, R], n)
	copy(batch, g.queue[:n])
	g.queue = append(g.queue[:0], g.queue[n:]...)
	for _, c := range batch {
		c.taken = true
	}
	return batch
}

func (g *Runner[T, R]) withdraw(c *call[T, R]) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, x := range g.queue {
		if x == c {
			g.queue = append(g.queue[:i], g.queue[i+1:]...)
			return true
		}
	}
	return false
}

func (g *Runner[T, R]) isTaken(c *call[T, R]) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return c.taken
}
