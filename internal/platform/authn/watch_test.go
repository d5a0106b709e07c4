package authn_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/authn/authntest"
	"github.com/reel-video/reel/internal/platform/errs"
)

// versions is a users service's accounts version.
type versions struct {
	mu      sync.Mutex
	version int64
	err     error
}

func (v *versions) AccountsVersion(context.Context) (int64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.version, v.err
}

func (v *versions) set(n int64, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.version, v.err = n, err
}

// clock is a clock that moves only when told.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Now()} }
func watched(src *versions) (*authn.Watch, *clock) {
	w, c := authn.NewWatch(src), newClock()
	w.SetClock(c.now)
	return w, c
}

// An entry is believed for its few seconds on its own; past them only while
// the version, read every second, stands, and for a minute at most.
func TestWatchFresh(t *testing.T) {
	ctx := t.Context()
	const ttl = 3 * time.Second
	src := &versions{version: 5}
	w, c := watched(src)

	// Before the first read of the version: the few seconds only.
	early := w.Stamp()
	c.advance(2 * time.Second)
	if !w.Fresh(early, ttl) {
		t.Fatal("an entry within its few seconds is not believed")
	}
	c.advance(2 * time.Second)
	if w.Fresh(early, ttl) {
		t.Fatal("an entry past its few seconds believed with no version read")
	}
	early = w.Stamp()
	if err := w.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if w.Fresh(early, ttl) {
		t.Fatal("an entry read before the first version read is believed")
	}

	// Read under a known version: believed while the version stands and is
	// read every second, for a minute at most.
	s := w.Stamp()
	for elapsed := time.Second; elapsed < time.Minute; elapsed += time.Second {
		c.advance(time.Second)
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
		if !w.Fresh(s, ttl) {
			t.Fatalf("not believed %v after it was read, with the version standing", elapsed)
		}
	}
	c.advance(time.Second)
	if err := w.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if w.Fresh(s, ttl) {
		t.Fatal("believed past a minute on the version's word")
	}

	// A change: what was read before it is not believed from then on, even
	// within its few seconds.
	s = w.Stamp()
	src.set(6, nil)
	c.advance(time.Second)
	if err := w.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if w.Fresh(s, ttl) {
		t.Fatal("an entry read before a change is believed")
	}
	c.advance(ttl)

	// The version cannot be read: entries last their few seconds from the
	// last good read.
	s = w.Stamp()
	src.set(6, errs.ErrUnavailable)
	c.advance(time.Second)
	if err := w.Check(ctx); !errors.Is(err, errs.ErrUnavailable) {
		t.Fatalf("check: %v", err)
	}
	c.advance(time.Second)
	if !w.Fresh(s, ttl) {
		t.Fatal("believed for less than its few seconds")
	}
	c.advance(2 * time.Second)
	if w.Fresh(s, ttl) {
		t.Fatal("believed with the version unread for longer than the few seconds")
	}
	src.set(6, nil)
	if err := w.Check(ctx); err != nil || !w.Fresh(s, ttl) {
		t.Fatalf("the version read again, standing: %v, believed %v", err, w.Fresh(s, ttl))
	}
}

// A verifier with a watch reads an account's standing once while no account
// changes, and again once one has.
func TestStandingWatched(t *testing.T) {
	iss := authntest.New(t)
	src := &standings{by: map[string]authn.Standing{}}
	ver := &versions{version: 1}
	w, c := watched(ver)
	v := iss.Verifier()
	v.SetStanding(src, w)
	if v.Watch() != w {
		t.Fatal("the verifier does not give its watch")
	}
	id := authntest.NewUserID()
	tok := iss.TokenAt(t, id, authn.RoleAdmin, time.Now().Add(-time.Minute), time.Hour)
	src.set(id, authn.Standing{Role: authn.RoleAdmin})
	if err := w.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if c, err := authenticate(v, tok); err != nil || c.Role != authn.RoleAdmin {
			t.Fatalf("admin in good standing: %+v %v", c, err)
		}
		c.advance(time.Second)
		if err := w.Check(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if src.reads != 1 {
		t.Fatalf("standing read %d times in 20 s with no change, want 1", src.reads)
	}

	// Demoted on another replica: this one has no Forget, only the version.
	src.set(id, authn.Standing{Role: authn.RoleUser})
	ver.set(2, nil)
	c.advance(time.Second)
	if err := w.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c, err := authenticate(v, tok); err != nil || c.Role != authn.RoleUser {
		t.Fatalf("demoted elsewhere: %+v %v, want role user once the version moved", c, err)
	}
	if src.reads != 2 {
		t.Fatalf("standing read %d times, want 2", src.reads)
	}
}
