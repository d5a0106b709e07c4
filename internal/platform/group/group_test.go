package group_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reel-video/reel/internal/platform/group"
)

// The tests run in synctest bubbles: synctest.Wait returns once every
// caller is blocked, so "queued" and "still waiting" are checked without
// polling or sleeping.

// waitQueued waits until every goroutine of the bubble is blocked, then
// checks that n items wait.
func waitQueued[T, R any](t *testing.T, g *group.Runner[T, R], n int) {
	t.Helper()
	synctest.Wait()
	if q := g.Queued(); q != n {
		t.Fatalf("%d items queued, want %d", q, n)
	}
}

// Items queued while the slots are busy go in one run, in order, up to
// the bound, and each caller gets its own result.
func TestBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slots := make(chan struct{}, 1)
		var runs atomic.Int32
		var mu sync.Mutex
		var sizes []int
		g := group.New(slots, 4, func(_ context.Context, items []int) []int {
			runs.Add(1)
			mu.Lock()
			sizes = append(sizes, len(items))
			mu.Unlock()
			out := make([]int, len(items))
			for i, v := range items {
				out[i] = v * 10
			}
			return out
		})
		slots <- struct{}{} // busy
		const n = 6
		got := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := g.Do(t.Context(), i)
				if err != nil {
					t.Error(err)
				}
				got[i] = r
			}()
		}
		waitQueued(t, g, n)
		<-slots
		wg.Wait()
		for i, r := range got {
			if r != i*10 {
				t.Fatalf("item %d got %d", i, r)
			}
		}
		if runs.Load() != 2 || sizes[0] != 4 || sizes[1] != 2 {
			t.Fatalf("runs %d of sizes %v, want 4 then 2", runs.Load(), sizes)
		}
		if g.Queued() != 0 {
			t.Fatalf("%d left queued", g.Queued())
		}
	})
}

// A caller whose context ends while it waits leaves the queue; its item
// is never run.
func TestCancelledWhileQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slots := make(chan struct{}, 1)
		ran := make(chan []string, 2)
		g := group.New(slots, 8, func(_ context.Context, items []string) []error {
			ran <- items
			return make([]error, len(items))
		})
		slots <- struct{}{}
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() { _, err := g.Do(ctx, "gone"); errc <- err }()
		waitQueued(t, g, 1)
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Do = %v, want the context's error", err)
		}
		<-slots
		if _, err := g.Do(t.Context(), "kept"); err != nil {
			t.Fatal(err)
		}
		if items := <-ran; len(items) != 1 || items[0] != "kept" {
			t.Fatalf("ran %v, want only the item still wanted", items)
		}
	})
}

// Once a run holds an item, its caller waits for the result even when its
// context ends, and the run's context does not end with it. Two callers
// queue and one run takes both items, so one of them waits on a run made
// by the other.
func TestTakenItemIsWaitedFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slots := make(chan struct{}, 1)
		started, release := make(chan struct{}), make(chan struct{})
		g := group.New(slots, 8, func(ctx context.Context, items []int) []error {
			close(started)
			<-release
			out := make([]error, len(items))
			for i := range out {
				out[i] = ctx.Err()
			}
			return out
		})
		slots <- struct{}{} // busy, so that both callers queue
		ctx, cancel := context.WithCancel(t.Context())
		type answer struct{ runErr, err error }
		done := make(chan answer, 2)
		for i := range 2 {
			go func() { r, err := g.Do(ctx, i); done <- answer{r, err} }()
		}
		waitQueued(t, g, 2)
		<-slots
		<-started
		cancel()
		synctest.Wait()
		select {
		case a := <-done:
			t.Fatalf("Do returned %+v while its item was running", a)
		default:
		}
		close(release)
		for range 2 {
			if a := <-done; a.err != nil || a.runErr != nil {
				t.Fatalf("Do = %+v; want the run's result, with a context that did not end", a)
			}
		}
	})
}

// With a linger, a run that starts short of the bound waits for more
// items first; one that starts full does not wait.
func TestLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var sizes []int
		g := group.New(make(chan struct{}, 1), 3, func(_ context.Context, items []int) []int {
			mu.Lock()
			sizes = append(sizes, len(items))
			mu.Unlock()
			return items
		}).WithLinger(time.Second)
		var wg sync.WaitGroup
		start := time.Now()
		wg.Go(func() { _, _ = g.Do(t.Context(), 1) })
		time.Sleep(500 * time.Millisecond)
		wg.Go(func() { _, _ = g.Do(t.Context(), 2) })
		wg.Wait()
		if d := time.Since(start); d != time.Second {
			t.Fatalf("the run began after %v, want the linger's 1s", d)
		}
		// Three queued while a run holds the slot: the next run is full
		// and takes them at once.
		slot := make(chan struct{})
		h := group.New(make(chan struct{}, 1), 3, func(_ context.Context, items []int) []int {
			if items[0] == 0 {
				<-slot
			}
			mu.Lock()
			sizes = append(sizes, len(items))
			mu.Unlock()
			return items
		}).WithLinger(time.Second)
		wg.Go(func() { _, _ = h.Do(t.Context(), 0) })
		time.Sleep(2 * time.Second) // the first run lingers, then blocks
		for i := range 3 {
			wg.Go(func() { _, _ = h.Do(t.Context(), i+1) })
		}
		synctest.Wait()
		start = time.Now()
		close(slot)
		wg.Wait()
		if d := time.Since(start); d != 0 {
			t.Fatalf("a full run waited %v", d)
		}
		if want := []int{2, 1, 3}; !slices.Equal(sizes, want) {
			t.Fatalf("runs of %v, want %v", sizes, want)
		}
	})
}
