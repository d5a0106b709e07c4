package videos

import (
	"fmt"
	"testing"
	"time"
)

func TestMediaCacheBoundAndLifetime(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := newMediaCache(3, 2*time.Second)
	put := func(id string) {
		_, _, gen := c.get(id, now)
		c.put(id, playable{videoKey: "k/" + id}, gen, now)
	}
	for _, id := range []string{"a", "b", "c"} {
		put(id)
	}
	if _, ok, _ := c.get("a", now); !ok { // a is now the most recent
		t.Fatal("a missing")
	}
	put("d") // evicts b, the least recently used
	if _, ok, _ := c.get("b", now); ok {
		t.Fatal("b should have been evicted")
	}
	if c.len() != 3 {
		t.Fatalf("len %d, bound 3", c.len())
	}
	if p, ok, _ := c.get("a", now.Add(2*time.Second-time.Nanosecond)); !ok || p.videoKey != "k/a" {
		t.Fatalf("a within its lifetime: %v %v", p, ok)
	}
	if _, ok, _ := c.get("a", now.Add(2*time.Second)); ok {
		t.Fatal("a past its lifetime")
	}

	// A lookup that read the database before an invalidation does not put
	// its (possibly stale) row back.
	_, _, gen := c.get("e", now)
	c.forget("unrelated")
	c.put("e", playable{videoKey: "stale"}, gen, now)
	if _, ok, _ := c.get("e", now); ok {
		t.Fatal("a fill from before an invalidation was cached")
	}
	c.forget()
	if c.len() != 0 {
		t.Fatalf("forget all left %d", c.len())
	}
}

func BenchmarkMediaCacheGet(b *testing.B) {
	c := newMediaCache(mediaCacheSize, time.Hour)
	now := time.Now()
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("0190f0f0-0000-7000-8000-%012d", i)
		c.put(ids[i], playable{videoKey: ids[i]}, 0, now)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok, _ := c.get(ids[i%len(ids)], now); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
}
