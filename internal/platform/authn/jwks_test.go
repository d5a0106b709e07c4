package authn_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/authn/authntest"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
)

// keyServer is a users service's JWKS endpoint on a real socket, whose
// answers a test can break.
type keyServer struct {
	*httptest.Server
	iss   *authntest.Issuer
	hits  atomic.Int64
	conns atomic.Int64
	// fail, when positive, makes the next requests answer 503.
	fail atomic.Int64
	// status, when set, is answered instead of the key set.
	status atomic.Int64
	// hold, when set, makes requests wait until it is closed.
	hold atomic.Pointer[chan struct{}]
}

func newKeyServer(t *testing.T) *keyServer {
	t.Helper()
	s := &keyServer{iss: authntest.New(t)}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if h := s.hold.Load(); h != nil {
			<-*h
		}
		if s.fail.Add(-1) >= 0 {
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		if st := s.status.Load(); st != 0 {
			http.Error(w, "no", int(st))
			return
		}
		_ = json.NewEncoder(w).Encode(s.iss.JWKS())
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *keyServer) client() *authn.JWKSClient {
	c := authn.NewJWKSClient(s.URL+"/.well-known/jwks.json", nil)
	c.Backoff = time.Millisecond
	return c
}

func (s *keyServer) kid(t *testing.T) string {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(s.iss.Token(t, authntest.NewUserID(), authn.RoleUser), &authn.Claims{})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Header["kid"].(string)
}

// TestJWKSCachedWhileDown: once fetched, keys keep verifying tokens while
// the users service is down, even once they are due for a refresh.
func TestJWKSCachedWhileDown(t *testing.T) {
	s := newKeyServer(t)
	c := s.client()
	v := authn.NewVerifier(c)
	tok := s.iss.Token(t, authntest.NewUserID(), authn.RoleUser)
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	s.Close()
	c.MaxAge, c.MinRefresh = 0, 0 // every use would like a fresh set
	for range 5 {
		if _, err := v.Verify(t.Context(), tok); err != nil {
			t.Fatalf("users down: %v", err)
		}
	}
}

// TestJWKSStaleDoesNotWait: a due refresh happens in the background; a
// request with a known key never waits for a slow users service.
func TestJWKSStaleDoesNotWait(t *testing.T) {
	s := newKeyServer(t)
	c := s.client()
	kid := s.kid(t)
	if _, err := c.PublicKey(t.Context(), kid); err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	s.hold.Store(&hold)
	defer close(hold)
	c.MaxAge, c.MinRefresh = 0, 0
	// A short deadline: waiting on the held fetch would fail.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	for range 10 {
		if _, err := c.PublicKey(ctx, kid); err != nil {
			t.Fatalf("stale key while the refresh hangs: %v", err)
		}
	}
	// The refresh started in the background reaches the server; while it
	// hangs no other starts.
	for deadline := time.Now().Add(5 * time.Second); s.hits.Load() < 2 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if _, err := c.PublicKey(ctx, kid); err != nil {
		t.Fatal(err)
	}
	if n := s.hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want the first and one refresh", n)
	}
}

// TestJWKSUnknownKid: an unknown kid is looked up again at most once per
// MinRefresh.
func TestJWKSUnknownKid(t *testing.T) {
	s := newKeyServer(t)
	c := s.client()
	c.MinRefresh = time.Hour
	if _, err := c.PublicKey(t.Context(), s.kid(t)); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := c.PublicKey(t.Context(), "forged"); !errors.Is(err, authn.ErrUnknownKey) {
			t.Fatalf("forged kid: %v", err)
		}
	}
	if n := s.hits.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1 (forged kids within MinRefresh fetch nothing)", n)
	}
	c.MinRefresh = 0
	if _, err := c.PublicKey(t.Context(), "forged"); !errors.Is(err, authn.ErrUnknownKey) {
		t.Fatalf("forged kid: %v", err)
	}
	if n := s.hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

// TestJWKSRetries: a fetch is retried on 5xx and network errors, a
// bounded number of times, and not on other answers.
func TestJWKSRetries(t *testing.T) {
	t.Run("5xx then good", func(t *testing.T) {
		s := newKeyServer(t)
		s.fail.Store(2)
		if _, err := s.client().PublicKey(t.Context(), s.kid(t)); err != nil {
			t.Fatal(err)
		}
		if n := s.hits.Load(); n != 3 {
			t.Fatalf("%d attempts, want 3", n)
		}
	})
	t.Run("down longer than the retries", func(t *testing.T) {
		s := newKeyServer(t)
		s.fail.Store(100)
		_, err := s.client().PublicKey(t.Context(), s.kid(t))
		if !errors.Is(err, errs.ErrUnavailable) {
			t.Fatalf("err = %v, want unavailable", err)
		}
		if n := s.hits.Load(); n != 3 {
			t.Fatalf("%d attempts, want 3", n)
		}
	})
	t.Run("404 is not retried", func(t *testing.T) {
		s := newKeyServer(t)
		s.status.Store(http.StatusNotFound)
		if _, err := s.client().PublicKey(t.Context(), s.kid(t)); err == nil {
			t.Fatal("no error")
		}
		if n := s.hits.Load(); n != 1 {
			t.Fatalf("%d attempts, want 1", n)
		}
	})
}

// TestJWKSUnreachable: with no key set fetched yet and the users service
// down, a token is not declared invalid: the answer is 503.
func TestJWKSUnreachable(t *testing.T) {
	s := newKeyServer(t)
	tok := s.iss.Token(t, authntest.NewUserID(), authn.RoleUser)
	c := s.client()
	s.Close()
	_, err := authn.NewVerifier(c).Verify(t.Context(), tok)
	if errors.Is(err, authn.ErrInvalidToken) || httpx.StatusOf(errs.KindOf(err)) != http.StatusServiceUnavailable {
		t.Fatalf("users down: %v, want 503", err)
	}
}

// TestJWKSSharedFetch: concurrent requests for an unknown kid share one
// fetch, and fetches reuse one connection.
func TestJWKSSharedFetch(t *testing.T) {
	s := newKeyServer(t)
	hold := make(chan struct{})
	s.hold.Store(&hold)
	c := s.client()
	kid := s.kid(t)
	var wg sync.WaitGroup
	errc := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.PublicKey(t.Context(), kid)
			errc <- err
		}()
	}
	for s.hits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(hold)
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := s.hits.Load(); n != 1 {
		t.Fatalf("%d fetches for 20 concurrent requests, want 1", n)
	}
	s.hold.Store(nil)
	c.MinRefresh = 0
	for range 5 {
		_, _ = c.PublicKey(t.Context(), "other")
	}
	if n, conns := s.hits.Load(), s.conns.Load(); n != 6 || conns != 1 {
		t.Fatalf("%d fetches over %d connections, want 6 over 1", n, conns)
	}
}
