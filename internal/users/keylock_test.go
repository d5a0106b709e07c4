package users

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Callers on a common key run one at a time, whatever other keys they
// lock; a caller whose context ends stops waiting and holds nothing; and
// no lock outlives its last user.
func TestKeyLocks(t *testing.T) {
	var k keyLocks
	ctx := context.Background()
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys := []string{"a", "ip:1"}
			if i%2 == 0 {
				keys = []string{"b", "ip:1"}
			}
			unlock, err := k.lock(ctx, sortedKeys(keys))
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(100 * time.Microsecond)
			inside.Add(-1)
			unlock()
		}()
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("%d callers on one key at once", most.Load())
	}

	unlock, err := k.lock(ctx, []string{"ip:1"})
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := k.lock(short, []string{"a", "ip:1"}); err == nil {
		t.Fatal("a locked key was taken twice")
	}
	// The waiter that gave up released "a".
	other, err := k.lock(ctx, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	other()
	unlock()
	if len(k.m) != 0 {
		t.Fatalf("locks left behind: %v", k.m)
	}
}

func sortedKeys(keys []string) []string {
	if keys[0] > keys[1] {
		keys[0], keys[1] = keys[1], keys[0]
	}
	return keys
}
