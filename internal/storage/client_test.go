package storage_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/authn/authntest"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/storage"
)

// fakeService answers every request with the next of its answers (the
// last one repeats) and counts requests and connections.
type fakeService struct {
	*httptest.Server
	hits, conns atomic.Int64
}

type fakeAnswer struct {
	status int
	body   string
	header map[string]string
}

func newFakeService(t *testing.T, answers ...fakeAnswer) *fakeService {
	t.Helper()
	f := &fakeService{}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(f.hits.Add(1)) - 1
		a := answers[min(n, len(answers)-1)]
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	f.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			f.conns.Add(1)
		}
	}
	f.Start()
	t.Cleanup(f.Close)
	return f
}

func fakeClient(t *testing.T, url string) *storage.Client {
	t.Helper()
	keys, err := authn.NewServiceKeys(serviceKey, "videos")
	if err != nil {
		t.Fatal(err)
	}
	return storage.NewClient(url, keys, nil)
}

// resetter accepts connections and closes them at once, as a service that
// dies mid-call, counting them.
func resetter(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			_ = c.Close()
		}
	}()
	return "http://" + ln.Addr().String(), &n
}

var (
	unavailable = fakeAnswer{status: 503, body: `{"code":"unavailable","status":503}`}
	serverError = fakeAnswer{status: 500, body: `{"code":"internal","status":500}`}
)

// TestClientRetryPolicy: which failures are tried again, how often, and
// that a retry ends as soon as one attempt succeeds.
func TestClientRetryPolicy(t *testing.T) {
	user := authntest.NewUserID()
	t.Run("503 retried a bounded number of times", func(t *testing.T) {
		f := newFakeService(t, unavailable)
		start := time.Now()
		err := func() error { _, err := fakeClient(t, f.URL).Usage(t.Context(), user); return err }()
		if !errors.Is(err, errs.ErrUnavailable) || f.hits.Load() != 3 {
			t.Fatalf("err %v after %d attempts, want unavailable after 3", err, f.hits.Load())
		}
		// Two pauses of 100-200 ms and 200-300 ms between the attempts.
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Fatalf("3 attempts in %s: no backoff", d)
		}
	})
	t.Run("a lost answer, then success", func(t *testing.T) {
		f := newFakeService(t, unavailable, fakeAnswer{status: 200, body: `{"used_bytes":1,"reserved_bytes":0,"quota_bytes":10,"available_bytes":9}`})
		if err := func() error { _, err := fakeClient(t, f.URL).Usage(t.Context(), user); return err }(); err != nil || f.hits.Load() != 2 {
			t.Fatalf("err %v after %d attempts, want success after 2", err, f.hits.Load())
		}
	})
	t.Run("500 is not retried", func(t *testing.T) {
		f := newFakeService(t, serverError, fakeAnswer{status: 200, body: `{"used_bytes":1,"reserved_bytes":0,"quota_bytes":10,"available_bytes":9}`})
		if err := func() error { _, err := fakeClient(t, f.URL).Usage(t.Context(), user); return err }(); err == nil || f.hits.Load() != 1 {
			t.Fatalf("err %v after %d attempts, want a failure after 1", err, f.hits.Load())
		}
	})
	t.Run("a refusal is not retried and comes back as the sentinel", func(t *testing.T) {
		f := newFakeService(t, fakeAnswer{status: 413, body: `{"code":"quota_exceeded","status":413}`}, fakeAnswer{status: 200, body: `{"used_bytes":1,"reserved_bytes":0,"quota_bytes":10,"available_bytes":9}`})
		if err := func() error { _, err := fakeClient(t, f.URL).Reserve(t.Context(), user, 100, time.Hour); return err }(); !errors.Is(err, storage.ErrQuotaExceeded) || f.hits.Load() != 1 {
			t.Fatalf("err %v after %d attempts, want the sentinel after 1", err, f.hits.Load())
		}
	})
	t.Run("a broken connection is retried", func(t *testing.T) {
		url, accepts := resetter(t)
		c := fakeClient(t, url)
		if err := func() error { _, err := c.Usage(t.Context(), user); return err }(); !errors.Is(err, errs.ErrUnavailable) || accepts.Load() != 3 {
			t.Fatalf("err %v after %d connections, want unavailable after 3", err, accepts.Load())
		}
	})
}

// TestClientReusesConnections: calls, refusals included, go over one
// kept-alive connection, because every answer is read to the end.
func TestClientReusesConnections(t *testing.T) {
	user := authntest.NewUserID()
	ok := newFakeService(t, fakeAnswer{status: 200, body: `{"used_bytes":1,"reserved_bytes":0,"quota_bytes":10,"available_bytes":9}`})
	c := fakeClient(t, ok.URL)
	for range 10 {
		if err := func() error { _, err := c.Usage(t.Context(), user); return err }(); err != nil {
			t.Fatal(err)
		}
	}
	refusing := newFakeService(t, fakeAnswer{status: 413, body: `{"code":"quota_exceeded","status":413,"detail":"` + strings.Repeat("x", 8<<10) + `"}`})
	r := fakeClient(t, refusing.URL)
	for range 10 {
		if err := func() error { _, err := r.Reserve(t.Context(), user, 100, time.Hour); return err }(); !errors.Is(err, storage.ErrQuotaExceeded) {
			t.Fatal(err)
		}
	}
	if ok.conns.Load() != 1 || refusing.conns.Load() != 1 {
		t.Fatalf("10 calls each over %d and %d connections, want 1", ok.conns.Load(), refusing.conns.Load())
	}
	// Clients made separately share the process's pool.
	c2 := fakeClient(t, ok.URL)
	c = c2
	if err := func() error { _, err := c.Usage(t.Context(), user); return err }(); err != nil || ok.conns.Load() != 1 {
		t.Fatalf("a second client: %v, %d connections", err, ok.conns.Load())
	}
}
