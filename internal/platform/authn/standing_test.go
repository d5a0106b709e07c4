package authn_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/authn/authntest"
	"github.com/reel-video/reel/internal/platform/errs"
)

type standings struct {
	mu    sync.Mutex
	by    map[string]authn.Standing
	err   error
	reads int
}

func (s *standings) Standing(_ context.Context, id string) (authn.Standing, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	return s.by[id], s.err
}

func (s *standings) set(id string, st authn.Standing) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.by[id] = st
}

func authenticate(v *authn.Verifier, token string) (authn.Caller, error) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return v.Authenticate(r)
}

// The verifier believes a token's signature, not the account behind it:
// a disabled account, a token from before the cut and a changed role are
// the account's as it stands, read once per few seconds and forgotten on
// demand.
func TestStanding(t *testing.T) {
	iss := authntest.New(t)
	src := &standings{by: map[string]authn.Standing{}}
	v := iss.Verifier()
	v.SetStanding(src, nil)
	id := authntest.NewUserID()
	admin := iss.TokenAt(t, id, authn.RoleAdmin, time.Now().Add(-time.Minute), time.Hour)

	src.set(id, authn.Standing{Role: authn.RoleAdmin})
	for range 3 {
		if c, err := authenticate(v, admin); err != nil || c.Role != authn.RoleAdmin {
			t.Fatalf("admin in good standing: %+v %v", c, err)
		}
	}
	if src.reads != 1 {
		t.Fatalf("standing read %d times for 3 requests, want 1 (cached)", src.reads)
	}

	src.set(id, authn.Standing{Role: authn.RoleUser})
	v.Forget(id)
	if c, err := authenticate(v, admin); err != nil || c.Role != authn.RoleUser {
		t.Fatalf("demoted: %+v %v, want role user", c, err)
	}

	src.set(id, authn.Standing{Role: authn.RoleUser, Disabled: true})
	v.Forget(id)
	if _, err := authenticate(v, admin); !errors.Is(err, authn.ErrRevoked) {
		t.Fatalf("disabled: %v, want ErrRevoked", err)
	}

	src.set(id, authn.Standing{Role: authn.RoleUser, ValidAfter: time.Now()})
	v.Forget(id)
	if _, err := authenticate(v, admin); !errors.Is(err, authn.ErrRevoked) {
		t.Fatalf("issued before the cut: %v, want ErrRevoked", err)
	}
	fresh := iss.TokenAt(t, id, authn.RoleUser, time.Now().Add(2*time.Second), time.Hour)
	if _, err := authenticate(v, fresh); err != nil {
		t.Fatalf("issued after the cut: %v", err)
	}

	// Users unreachable: the token's claims stand rather than every
	// request failing.
	other := authntest.NewUserID()
	src.err = errs.ErrUnavailable
	if c, err := authenticate(v, iss.Token(t, other, authn.RoleUser)); err != nil || c.UserID != other {
		t.Fatalf("standing unavailable: %+v %v", c, err)
	}
}
