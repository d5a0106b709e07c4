package videos

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Media lookups are cached: a player fetches a video as a run of range
// requests, and each used to look the video up in the database again
// (a third of a small range's cost). What serving needs of the row
// (the blob keys and the content type of a playable video) is kept per
// video id, for at most mediaCacheTTL, in a least-recently-used cache
// of at most mediaCacheSize videos.
//
// This process forgets a video the moment it trashes, purges or fails
// it, so a deleted video stops playing at once here; a video deleted by
// another replica stops playing within mediaCacheTTL.
const (
	mediaCacheTTL  = 2 * time.Second
	mediaCacheSize = 4096
)

// playable is what serving the files of a playable (ready, not trashed)
// video needs: with its derived files by name and its master playlist
// (media_files.go), so that a player's range requests for the segments
// of a rendition cost no query either.
type playable struct {
	videoKey, posterKey, contentType string
	files                            map[string]derivedFile
	master                           *memFile // nil until a rendition is done
	ladder                           map[int]string
}

type cacheEntry[T any] struct {
	v       T
	expires time.Time
}

// idCache is a bounded LRU by video id with a time to live: the media
// lookups (mediaCache) and the videos Get reads (records). Invalidation
// bumps a generation, so a lookup that read the database before an
// invalidation cannot put back what it read. The clock is the caller's,
// so that lifetimes are tested without waiting.
type idCache[T any] struct {
	mu  sync.Mutex
	ttl time.Duration
	gen uint64
	lru *simplelru.LRU[string, cacheEntry[T]]
}

// mediaCache is the cache of playable videos.
type mediaCache = idCache[playable]

func newMediaCache(size int, ttl time.Duration) *mediaCache { return newIDCache[playable](size, ttl) }

func newIDCache[T any](size int, ttl time.Duration) *idCache[T] {
	lru, err := simplelru.NewLRU[string, cacheEntry[T]](size, nil)
	if err != nil {
		panic(fmt.Sprintf("cache of size %d: %v", size, err)) // a constant in this package
	}
	return &idCache[T]{ttl: ttl, lru: lru}
}

// get returns the cached entry for id and the current generation (to be
// handed to put after a miss).
func (c *idCache[T]) get(id string, now time.Time) (T, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lru.Get(id)
	if !ok {
		var zero T
		return zero, false, c.gen
	}
	if !now.Before(e.expires) {
		c.lru.Remove(id)
		var zero T
		return zero, false, c.gen
	}
	return e.v, true, c.gen
}

// put caches v for id unless the cache was invalidated since gen.
func (c *idCache[T]) put(id string, v T, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.gen {
		c.lru.Add(id, cacheEntry[T]{v: v, expires: now.Add(c.ttl)})
	}
}

// forget drops ids (all of them when none is given) and stops lookups in
// flight from caching what they read.
func (c *idCache[T]) forget(ids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if len(ids) == 0 {
		c.lru.Purge()
		return
	}
	for _, id := range ids {
		c.lru.Remove(id)
	}
}

func (c *idCache[T]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
