package videos

import (
	"context"
	"slices"
	"sync"
	"time"
)

// The feed's first page is the hottest read there is: every client's
// opening call and every visitor's home page, the same for every caller
// (the posters are signed per viewer afterwards). It is read once and
// served from memory for at most feedTTL, instead of one query and the
// scan of a page of rows per request. A change made by this process that
// a feed shows (a video made ready, renamed, trashed, restored, purged, a
// poster, a rendition or a storyboard added, its ladder's state) drops it
// at once, through changed; a change made by another replica, and a
// ladder's progress percent, show within feedTTL. Later pages, searches
// and every per-user list are read afresh. A video read by Get is kept
// the same way, per id (records): its viewers ask for it together.

// feedTTL bounds how old a first page served from memory may be.
const feedTTL = time.Second

// A video that Get reads (the watch page, the playback grant, a client
// polling a video) is kept as long, in an LRU of recordsSize by id: its
// viewers ask for it together, as the feed's readers do.
const (
	recordTTL   = feedTTL
	recordsSize = 4096
)

// maxFeedPages bounds the page sizes kept (one entry each; clients ask
// for a handful of sizes).
const maxFeedPages = 16

// firstPages keeps the feed's first page per page size.
type firstPages struct {
	mu    sync.Mutex
	gen   uint64 // moved by changed: a page read before it is not served
	pages map[int]*firstPage
}

// firstPage is one size's first page: being read until ready is closed,
// then its videos or the read's error.
type firstPage struct {
	ready chan struct{}
	gen   uint64
	at    time.Time // when its read began
	vs    []Video
	err   error
}

func newFirstPages() *firstPages { return &firstPages{pages: map[int]*firstPage{}} }

// get returns the first page of limit videos (read with one more, as
// every list is, to tell whether a next page exists): from memory when a
// page read since the last change and less than feedTTL ago is there,
// else from read, once for all the callers that ask meanwhile. A failed
// read is not kept: each of its waiters then reads for itself.
func (f *firstPages) get(ctx context.Context, limit int, now time.Time, read func(context.Context) ([]Video, error)) ([]Video, error) {
	f.mu.Lock()
	p := f.pages[limit]
	if p == nil || p.gen != f.gen || now.Sub(p.at) >= feedTTL {
		if len(f.pages) >= maxFeedPages {
			clear(f.pages)
		}
		p = &firstPage{ready: make(chan struct{}), gen: f.gen, at: now}
		f.pages[limit] = p
		f.mu.Unlock()
		p.vs, p.err = read(ctx)
		if p.err != nil {
			f.drop(limit, p)
		}
		close(p.ready)
		return slices.Clone(p.vs), p.err
	}
	f.mu.Unlock()
	select {
	case <-p.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if p.err != nil {
		return read(ctx)
	}
	// A copy of the page: callers may reorder or cut their slice. The
	// videos' own slices are shared and read only.
	return slices.Clone(p.vs), nil
}

// drop forgets p unless a newer read of the same size replaced it.
func (f *firstPages) drop(limit int, p *firstPage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pages[limit] == p {
		delete(f.pages, limit)
	}
}

// changed drops every page: what was read before is not served again.
// Services call it through Service.changed.
func (f *firstPages) changed() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
	clear(f.pages)
}

// changed tells this process's caches that the videos ids (every video
// when none is given) changed in a way clients see, once the change is
// committed: the media lookups and Get's records forget them, and the
// feed's first page is read again.
func (s *Service) changed(ids ...string) {
	s.media.forget(ids...)
	s.records.forget(ids...)
	s.feed.changed()
}
