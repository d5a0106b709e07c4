package videos_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
)

// standings is a settable authn.StandingSource.
type standings struct {
	mu sync.Mutex
	m  map[string]authn.Standing
}

func (s *standings) Standing(_ context.Context, id string) (authn.Standing, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[id]; ok {
		return st, nil
	}
	return authn.Standing{Role: authn.RoleUser}, nil
}

func (s *standings) set(id string, st authn.Standing) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id] = st
}

// Media URLs issued to a viewer stop as soon as the viewer's account is
// disabled, or its tokens revoked after they were issued (issue 20): they
// used to play on for the URL's whole life (hours). /media checks the
// viewer named in the signed path as the verifier checks a token's holder,
// with the same few seconds of cache (Forget, which the users service
// calls on a change, drops it at once in its process).
func TestMediaChecksTheViewersStanding(t *testing.T) {
	src := &standings{m: map[string]authn.Standing{}}
	withEnv(t, func(t *testing.T, e *env) {
		clip := testVideo(t, 1, 64, 48)
		ann, bob := e.user("user"), e.user("user")
		id := e.mustUpload(ann, "watched", clip)
		video, poster := e.play(bob, id)
		plays := func(url string) (int, string) {
			t.Helper()
			r := e.do("GET", url, "", nil, "Range", "bytes=0-9")
			return r.status, r.code()
		}
		if st, _ := plays(video); st != 206 {
			t.Fatalf("before: %d", st)
		}

		// Bob's tokens are revoked after the URL was issued (a cut in the
		// future of its issue): the URL stops, the video and the poster.
		src.set(bob.id, authn.Standing{Role: authn.RoleUser, ValidAfter: time.Now().Add(2 * time.Second)})
		e.verifier.Forget(bob.id)
		for _, u := range []string{video, poster} {
			if st, code := plays(u); st != 403 || code != "url_revoked" {
				t.Fatalf("after the cut %s: %d %s", u, st, code)
			}
		}
		// The owner's own URLs are unaffected.
		annURL, _ := e.play(ann, id)
		if st, _ := plays(annURL); st != 206 {
			t.Fatalf("the owner's URL: %d", st)
		}

		// Disabled: refused whatever the URL's age.
		src.set(bob.id, authn.Standing{Disabled: true, Role: authn.RoleUser})
		e.verifier.Forget(bob.id)
		if st, code := plays(video); st != 403 || code != "url_revoked" {
			t.Fatalf("disabled: %d %s", st, code)
		}

		// Enabled again, with the cut in the past: a new URL plays.
		src.set(bob.id, authn.Standing{Role: authn.RoleUser, ValidAfter: time.Now().Add(-time.Hour)})
		e.verifier.Forget(bob.id)
		fresh, _ := e.play(bob, id)
		if st, _ := plays(fresh); st != 206 {
			t.Fatalf("enabled again: %d", st)
		}
	}, func(c *envConfig) { c.standing = src })
}
