package blobtest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/blob"
)

// heapBytes returns the bytes of heap objects, live and not yet swept.
func heapBytes() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// peakHeapGrowth runs f and returns how far the heap rose above its level
// before f, sampled every millisecond.
func peakHeapGrowth(f func()) int64 {
	runtime.GC()
	base := heapBytes()
	var peak atomic.Int64
	peak.Store(base)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if h := heapBytes(); h > peak.Load() {
					peak.Store(h)
				}
			}
		}
	}()
	f()
	close(stop)
	<-done
	if h := heapBytes(); h > peak.Load() {
		peak.Store(h)
	}
	return peak.Load() - base
}

func (c *suite) testLargeStream(t *testing.T) {
	for _, tc := range []struct {
		size, declared int64
	}{
		{c.opts.LargeSize, c.opts.LargeSize},
		{c.opts.LargeSize / 2, -1},
	} {
		key := c.key(fmt.Sprintf("large/%d", tc.declared))
		h := sha256.New()
		src := io.TeeReader(stream(17, tc.size), h)
		var info blob.Info
		var err error
		start := time.Now()
		growth := peakHeapGrowth(func() {
			info, err = c.s.Put(t.Context(), key, src, tc.declared, "video/mp4")
		})
		if err != nil {
			t.Fatalf("Put %d MiB (size %d): %v", tc.size>>20, tc.declared, err)
		}
		t.Logf("Put %d MiB (size %d): %v, heap grew %.1f MiB", tc.size>>20, tc.declared,
			time.Since(start).Round(time.Millisecond), float64(growth)/(1<<20))
		if info.Size != tc.size {
			t.Fatalf("Put Info.Size = %d, want %d", info.Size, tc.size)
		}
		if growth > c.opts.MaxHeapGrowth {
			t.Errorf("Put of %d MiB grew the heap by %.1f MiB; limit %.1f MiB (is it buffering?)",
				tc.size>>20, float64(growth)/(1<<20), float64(c.opts.MaxHeapGrowth)/(1<<20))
		}
		want := h.Sum(nil)

		o, err := c.s.Open(t.Context(), key)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		h2 := sha256.New()
		var n int64
		start = time.Now()
		growth = peakHeapGrowth(func() {
			n, err = io.Copy(h2, o)
		})
		o.Close()
		if err != nil || n != tc.size {
			t.Fatalf("reading back: %d bytes, %v", n, err)
		}
		t.Logf("read %d MiB: %v, heap grew %.1f MiB", n>>20, time.Since(start).Round(time.Millisecond), float64(growth)/(1<<20))
		if got := h2.Sum(nil); !bytes.Equal(got, want) {
			t.Fatalf("sha256 of the read-back object %x, put %x", got, want)
		}
		if growth > c.opts.MaxHeapGrowth {
			t.Errorf("reading %d MiB grew the heap by %.1f MiB", n>>20, float64(growth)/(1<<20))
		}
		if err := c.s.Delete(t.Context(), key); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
}

func (c *suite) testConcurrentPuts(t *testing.T) {
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key := c.key(fmt.Sprintf("concurrent/%d/video.mp4", i))
			size := int64(200_000 + i*1000)
			_, errs[i] = c.s.Put(t.Context(), key, stream(uint64(100+i), size), size, "video/mp4")
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Put %d: %v", i, err)
		}
	}
	for i := range n {
		c.wantContent(t, c.key(fmt.Sprintf("concurrent/%d/video.mp4", i)), data(uint64(100+i), int64(200_000+i*1000)))
	}
}
