package blob

import (
	"os"
	"sync"
	"time"
)

// Open files are reused: a player fetches a video as a run of range
// requests, and opening, sizing and closing the file was a large share of
// the system calls each small range cost. Disk keeps the files of objects
// read in the last handleTTL open, and Open lends one out when the key has
// one idle.
//
// A lent file is the object as it was when that file was opened. This Disk
// writes and deletes through place and Delete, which drop the key's idle
// files and refuse the lent ones back, so its own readers never see an
// old version; a change made to the directory by another process (another
// replica on a shared volume) is seen within handleTTL, because no file
// older than that is lent again.
const (
	handleTTL = 2 * time.Second
	// maxIdleHandles bounds the files kept open while idle, over all keys.
	maxIdleHandles = 256
)

// handle is one open file of an object and what Open learned about it.
type handle struct {
	f      *os.File
	info   Info
	opened time.Time
}

// handleSlot is what the pool knows of one key: its idle files, how many
// are lent out, and a generation that invalidate bumps, so a file lent
// before a change is closed when it comes back.
type handleSlot struct {
	idle []handle
	lent int
	gen  uint64
}

// handles is the pool of a Disk.
type handles struct {
	mu    sync.Mutex
	keys  map[string]*handleSlot // a key is here while it has idle or lent files
	idle  int
	timer *time.Timer // closes expired idle files; set while any are idle
	now   func() time.Time
}

func newHandles() *handles {
	return &handles{keys: make(map[string]*handleSlot), now: time.Now}
}

// take lends an idle file of key, or records that the caller is opening a
// new one. The generation goes with the lent file to give.
func (h *handles) take(key string) (handle, uint64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.keys[key]
	if s == nil {
		s = &handleSlot{}
		h.keys[key] = s
	}
	s.lent++
	cutoff := h.now().Add(-handleTTL)
	for len(s.idle) > 0 {
		last := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		h.idle--
		if last.opened.After(cutoff) {
			return last, s.gen, true
		}
		_ = last.f.Close()
	}
	return handle{}, s.gen, false
}

// give takes back a file lent for key under generation gen (or opened after
// take found none). It stays open for the next reader unless the key
// changed meanwhile, the file is too old, or the pool is full.
func (h *handles) give(key string, hd handle, gen uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.keys[key]
	keep := s != nil && s.gen == gen && h.idle < maxIdleHandles && h.now().Sub(hd.opened) < handleTTL
	if s != nil {
		s.lent--
	}
	if !keep {
		_ = hd.f.Close()
		h.dropIfUnused(key, s)
		return
	}
	s.idle = append(s.idle, hd)
	h.idle++
	if h.timer == nil {
		h.timer = time.AfterFunc(handleTTL, h.sweep)
	}
}

// cancel undoes a take that found no idle file and whose open failed.
func (h *handles) cancel(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.keys[key]; s != nil {
		s.lent--
		h.dropIfUnused(key, s)
	}
}

// invalidate closes the idle files of key and makes the lent ones close
// when they come back: the key is about to name another file, or none.
func (h *handles) invalidate(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.keys[key]
	if s == nil {
		return
	}
	for _, hd := range s.idle {
		_ = hd.f.Close()
	}
	h.idle -= len(s.idle)
	s.idle = nil
	s.gen++
	h.dropIfUnused(key, s)
}

// sweep closes the idle files past handleTTL and runs again while any are
// left, so a deleted object's space is not held by an idle file for long.
func (h *handles) sweep() {
	h.mu.Lock()
	defer h.mu.Unlock()
	cutoff := h.now().Add(-handleTTL)
	for key, s := range h.keys {
		kept := s.idle[:0]
		for _, hd := range s.idle {
			if hd.opened.After(cutoff) {
				kept = append(kept, hd)
				continue
			}
			_ = hd.f.Close()
			h.idle--
		}
		clear(s.idle[len(kept):])
		s.idle = kept
		h.dropIfUnused(key, s)
	}
	if h.idle > 0 {
		h.timer.Reset(handleTTL)
	} else {
		h.timer = nil
	}
}

// dropIfUnused removes a key the pool no longer holds anything of.
func (h *handles) dropIfUnused(key string, s *handleSlot) {
	if s != nil && s.lent == 0 && len(s.idle) == 0 {
		delete(h.keys, key)
	}
}
