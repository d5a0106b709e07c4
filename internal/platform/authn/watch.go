package authn

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
)

// VersionSource gives the accounts version: a number the users service
// moves, in the same transaction, on every change of an account (its
// standing, its name). The users service in process, or its client.
type VersionSource interface {
	AccountsVersion(ctx context.Context) (int64, error)
}

// watchEvery is how often a Watch reads the version: a change made on
// another replica bites on this one within about this.
const watchEvery = time.Second

// watchedMax bounds how long an entry is believed on the version's word
// alone. A writer that does not move the version (an older release during
// a rolling upgrade, a change made by hand in the database) is then seen
// within it.
const watchedMax = time.Minute

// A Watch lets the caches of what the users service said about accounts
// (a verifier's standings, the pages' accounts) keep an entry for as long
// as no account changes, instead of a few seconds: one read of the version
// a second for the process, in place of one read per active account every
// few seconds, and a change bites within a second rather than within the
// caches' few seconds. Any change drops every entry: changes are rare (an
// admin's action, a new name, a new password), and each costs a refill no
// larger than one period of the caches' own expiry. While the version
// cannot be read, entries last only the caches' own few seconds.
type Watch struct {
	src VersionSource
	now func() time.Time

	mu      sync.Mutex
	known   bool
	version int64
	gen     uint64    // moved on every change seen: entries stamped before it are not believed
	checked time.Time // when the last read that found no change started
}

// NewWatch returns a watch of src's version; Run keeps it up to date.
func NewWatch(src VersionSource) *Watch { return &Watch{src: src, now: time.Now} }

// SetClock replaces the watch's clock, for tests.
func (w *Watch) SetClock(now func() time.Time) { w.now = now }

// A Stamp is what a cache keeps beside an entry: the watch's state when
// the entry was read from the users service.
type Stamp struct {
	gen uint64
	at  time.Time
}

// Stamp is taken just before an entry is read from the users service. A
// nil Watch stamps the time alone.
func (w *Watch) Stamp() Stamp {
	if w == nil {
		return Stamp{at: time.Now()}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return Stamp{gen: w.gen, at: w.now()}
}

// Fresh reports whether an entry stamped s may still be believed. Not
// once the watch has seen an account change since it was read; else when
// it was read less than ttl ago, or when the version was confirmed less
// than ttl ago (and the entry was read less than watchedMax ago).
func (w *Watch) Fresh(s Stamp, ttl time.Duration) bool {
	if w == nil {
		return time.Since(s.at) < ttl
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.known && s.gen != w.gen {
		return false
	}
	now := w.now()
	age := now.Sub(s.at)
	return age < ttl || (w.known && now.Sub(w.checked) < ttl && age < watchedMax)
}

// A WatchedCache remembers what was read of accounts by key, each entry
// believed as its watch says (Fresh, with the cache's ttl), in an LRU whose
// entries leave memory watchedMax after they were read. The verifier's
// standings and the web app's accounts and names are such caches.
type WatchedCache[T any] struct {
	w   *Watch
	ttl time.Duration
	lru *expirable.LRU[string, watched[T]]
}

type watched[T any] struct {
	v     T
	stamp Stamp
}

// NewWatchedCache returns a cache of at most size entries relying on w (nil:
// each entry is believed for ttl).
func NewWatchedCache[T any](w *Watch, size int, ttl time.Duration) *WatchedCache[T] {
	return &WatchedCache[T]{w: w, ttl: ttl, lru: expirable.NewLRU[string, watched[T]](size, nil, watchedMax)}
}

// Get returns the entry of key while it is believed.
func (c *WatchedCache[T]) Get(key string) (T, bool) {
	e, ok := c.lru.Get(key)
	if !ok || !c.w.Fresh(e.stamp, c.ttl) {
		var zero T
		return zero, false
	}
	return e.v, true
}

// Stamp is taken just before reading what Add then remembers.
func (c *WatchedCache[T]) Stamp() Stamp { return c.w.Stamp() }

// Add remembers v for key, read after s was taken.
func (c *WatchedCache[T]) Add(key string, v T, s Stamp) { c.lru.Add(key, watched[T]{v, s}) }

// Remove forgets key.
func (c *WatchedCache[T]) Remove(key string) { c.lru.Remove(key) }

// Check reads the version once. A change (or the first read) drops every
// entry stamped before it.
func (w *Watch) Check(ctx context.Context) error {
	started := w.now()
	v, err := w.src.AccountsVersion(ctx)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.known || v != w.version {
		w.known, w.version = true, v
		w.gen++ // what was read before is not believed any more
	}
	// Whatever is read from now on sees every change made before started.
	w.checked = started
	return nil
}

// Run checks the version every second until ctx ends. It logs when the
// version cannot be read, and when it can again, not every failure.
func (w *Watch) Run(ctx context.Context, log *slog.Logger) error {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	failing := false
	for {
		err := w.Check(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && !failing:
			log.Warn("cannot read the accounts version: account data is cached for a few seconds only until it can", "err", err)
		case err == nil && failing:
			log.Info("the accounts version can be read again")
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
