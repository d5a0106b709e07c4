package rpc_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/rpc"
)

const serviceKey = "0123456789abcdef0123456789abcdef-test"

// Sentinels of a made-up provider.
var (
	errRefused = errs.New(errs.TooLarge, "refused", "the provider refuses")
	errLimit   = errs.New(errs.RateLimited, "limit_reached", "the limit is reached")
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

func serviceKeys(t *testing.T, name string) *authn.ServiceKeys {
	t.Helper()
	keys, err := authn.NewServiceKeys(serviceKey, name)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func fakeClient(t *testing.T, url string) *rpc.Client {
	t.Helper()
	return rpc.New("test", url, serviceKeys(t, "videos"), nil, errRefused, errLimit)
}

// get calls the fake's one route, safe to repeat, decoding its answer.
func get(ctx context.Context, c *rpc.Client) (int, error) {
	var out struct {
		N int `json:"n"`
	}
	err := c.Call(ctx, "get", http.MethodGet, "/internal/v1/test/thing", nil, &out, true)
	return out.N, err
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
	ok          = fakeAnswer{status: 200, body: `{"n":1}`}
	unavailable = fakeAnswer{status: 503, body: `{"code":"unavailable","status":503}`}
	serverError = fakeAnswer{status: 500, body: `{"code":"internal","status":500}`}
	refused     = fakeAnswer{status: 413, body: `{"code":"refused","status":413}`}
)

// TestRetryPolicy: which failures are tried again, how often, and that a
// retry ends as soon as one attempt succeeds.
func TestRetryPolicy(t *testing.T) {
	for _, status := range []int{502, 503, 504} {
		t.Run(http.StatusText(status)+" retried a bounded number of times", func(t *testing.T) {
			f := newFakeService(t, fakeAnswer{status: status, body: `{"code":"unavailable"}`})
			start := time.Now()
			_, err := get(t.Context(), fakeClient(t, f.URL))
			if !errors.Is(err, errs.ErrUnavailable) || f.hits.Load() != 3 {
				t.Fatalf("err %v after %d attempts, want unavailable after 3", err, f.hits.Load())
			}
			// Two pauses of 100-200 ms and 200-300 ms between the attempts.
			if d := time.Since(start); d < 300*time.Millisecond {
				t.Fatalf("3 attempts in %s: no backoff", d)
			}
		})
	}
	t.Run("a lost answer, then success", func(t *testing.T) {
		f := newFakeService(t, unavailable, ok)
		if n, err := get(t.Context(), fakeClient(t, f.URL)); err != nil || n != 1 || f.hits.Load() != 2 {
			t.Fatalf("%d, err %v after %d attempts, want success after 2", n, err, f.hits.Load())
		}
	})
	t.Run("500 is not retried", func(t *testing.T) {
		f := newFakeService(t, serverError, ok)
		if _, err := get(t.Context(), fakeClient(t, f.URL)); !errors.Is(err, errs.ErrUnavailable) || f.hits.Load() != 1 {
			t.Fatalf("err %v after %d attempts, want unavailable after 1", err, f.hits.Load())
		}
	})
	t.Run("a refusal is not retried and comes back as the sentinel", func(t *testing.T) {
		f := newFakeService(t, refused, ok)
		if _, err := get(t.Context(), fakeClient(t, f.URL)); !errors.Is(err, errRefused) || f.hits.Load() != 1 {
			t.Fatalf("err %v after %d attempts, want the sentinel after 1", err, f.hits.Load())
		}
	})
	t.Run("a call not safe to repeat is tried once", func(t *testing.T) {
		f := newFakeService(t, unavailable, ok)
		err := fakeClient(t, f.URL).Call(t.Context(), "post", http.MethodPost, "/internal/v1/test/thing", map[string]int{"n": 1}, nil, false)
		if !errors.Is(err, errs.ErrUnavailable) || f.hits.Load() != 1 {
			t.Fatalf("err %v after %d attempts, want unavailable after 1", err, f.hits.Load())
		}
	})
	t.Run("a broken connection is retried", func(t *testing.T) {
		url, accepts := resetter(t)
		if _, err := get(t.Context(), fakeClient(t, url)); !errors.Is(err, errs.ErrUnavailable) || accepts.Load() != 3 {
			t.Fatalf("err %v after %d connections, want unavailable after 3", err, accepts.Load())
		}
	})
	t.Run("a cancelled call stops waiting", func(t *testing.T) {
		f := newFakeService(t, unavailable)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := get(ctx, fakeClient(t, f.URL)); !errors.Is(err, context.DeadlineExceeded) || f.hits.Load() != 1 {
			t.Fatalf("err %v after %d attempts, want the deadline after 1", err, f.hits.Load())
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("gave up after %s", d)
		}
	})
}

// TestRefusals: an error answer comes back as the provider's sentinel only
// when both its code and its status match one; anything else is
// unclassified, and every error names the client and the call.
func TestRefusals(t *testing.T) {
	t.Run("detail, fields and Retry-After kept", func(t *testing.T) {
		f := newFakeService(t, fakeAnswer{status: 429, header: map[string]string{"Retry-After": "60"},
			body: `{"code":"limit_reached","status":429,"detail":"come back tomorrow","errors":{"bytes":"too many"}}`})
		_, err := get(t.Context(), fakeClient(t, f.URL))
		e, found := errs.As(err)
		if !errors.Is(err, errLimit) || !found || e.RetryAfter != time.Minute || e.Msg != "come back tomorrow" || e.Fields["bytes"] != "too many" {
			t.Fatalf("err %#v", err)
		}
		if !strings.HasPrefix(err.Error(), "test client: get: ") {
			t.Fatalf("err %q, want the client and the call named", err)
		}
	})
	t.Run("a sentinel without Retry-After has none", func(t *testing.T) {
		f := newFakeService(t, refused)
		_, err := get(t.Context(), fakeClient(t, f.URL))
		if e, found := errs.As(err); !found || e.RetryAfter != 0 || e.Msg != errRefused.Msg {
			t.Fatalf("err %#v", err)
		}
	})
	for name, a := range map[string]fakeAnswer{
		"a known code with another status": {status: 400, body: `{"code":"refused","status":400}`},
		"an unknown code":                  {status: 401, body: `{"code":"unauthenticated","status":401}`},
		"no problem at all":                {status: 404, body: `not json`},
	} {
		t.Run(name+" is unclassified", func(t *testing.T) {
			f := newFakeService(t, a)
			_, err := get(t.Context(), fakeClient(t, f.URL))
			if err == nil || errs.KindOf(err) != errs.Internal || f.hits.Load() != 1 {
				t.Fatalf("err %v after %d attempts, want an unclassified error after 1", err, f.hits.Load())
			}
		})
	}
}

// TestReusesConnections: calls, refusals included, go over one kept-alive
// connection, because every answer is read to the end.
func TestReusesConnections(t *testing.T) {
	okSrv := newFakeService(t, ok)
	c := fakeClient(t, okSrv.URL)
	for range 10 {
		if _, err := get(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	refusing := newFakeService(t, fakeAnswer{status: 413, body: `{"code":"refused","status":413,"detail":"` + strings.Repeat("x", 8<<10) + `"}`})
	r := fakeClient(t, refusing.URL)
	for range 10 {
		if _, err := get(t.Context(), r); !errors.Is(err, errRefused) {
			t.Fatal(err)
		}
	}
	if okSrv.conns.Load() != 1 || refusing.conns.Load() != 1 {
		t.Fatalf("10 calls each over %d and %d connections, want 1", okSrv.conns.Load(), refusing.conns.Load())
	}
	// Clients made separately share the process's pool.
	if _, err := get(t.Context(), fakeClient(t, okSrv.URL)); err != nil || okSrv.conns.Load() != 1 {
		t.Fatalf("a second client: %v, %d connections", err, okSrv.conns.Load())
	}
}

// TestInternal: the end user's request id, address and user agent travel
// with a call and become the request metadata on the provider's internal
// route, which only a service credential opens.
func TestInternal(t *testing.T) {
	type seen struct {
		meta   obs.Request
		caller authn.Caller
		body   string
	}
	got := make(chan seen, 1)
	mux := http.NewServeMux()
	mux.Handle("POST /internal/v1/test/thing", rpc.Internal(serviceKeys(t, "test"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := authn.CallerFrom(r.Context())
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		if len(b) > 0 && r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("a body of type %q", r.Header.Get("Content-Type"))
		}
		got <- seen{meta: obs.RequestFrom(r.Context()), caller: c, body: string(b)}
		httpx.JSON(w, http.StatusOK, map[string]int{"n": 7})
	})))
	srv := httptest.NewServer(httpx.Wrap(mux, httpx.MiddlewareConfig{Logger: obs.Discard()}))
	t.Cleanup(srv.Close)

	t.Run("the user's metadata is passed on", func(t *testing.T) {
		user := obs.Request{ID: "req-123", IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (a viewer)"}
		var out struct {
			N int `json:"n"`
		}
		err := fakeClient(t, srv.URL).Call(obs.WithRequest(t.Context(), user), "post", http.MethodPost, "/internal/v1/test/thing", map[string]int{"n": 1}, &out, true)
		if err != nil || out.N != 7 {
			t.Fatalf("%d, %v", out.N, err)
		}
		s := <-got
		if s.meta != user || s.caller.Service != "videos" || s.body != `{"n":1}` {
			t.Fatalf("the provider saw %+v", s)
		}
	})
	t.Run("long values are cut", func(t *testing.T) {
		user := obs.Request{IP: strings.Repeat("1", 100), UserAgent: strings.Repeat("a", 1000)}
		if err := fakeClient(t, srv.URL).Call(obs.WithRequest(t.Context(), user), "post", http.MethodPost, "/internal/v1/test/thing", nil, nil, true); err != nil {
			t.Fatal(err)
		}
		if s := <-got; len(s.meta.IP) != 64 || len(s.meta.UserAgent) != 512 {
			t.Fatalf("the provider saw an address of %d and a user agent of %d bytes", len(s.meta.IP), len(s.meta.UserAgent))
		}
	})
	t.Run("without a user, the service's own request", func(t *testing.T) {
		if err := fakeClient(t, srv.URL).Call(t.Context(), "post", http.MethodPost, "/internal/v1/test/thing", nil, nil, true); err != nil {
			t.Fatal(err)
		}
		if s := <-got; s.meta.ID == "" || s.meta.IP != "127.0.0.1" || s.meta.UserAgent != "Go-http-client/1.1" {
			t.Fatalf("the provider saw %+v", s.meta)
		}
	})
	t.Run("no credential, no entry", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/internal/v1/test/thing", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(rpc.HeaderClientIP, "203.0.113.7")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized || len(got) != 0 {
			t.Fatalf("status %d", res.StatusCode)
		}
		// A credential for another key is no better: an unknown code on
		// 401, unclassified, not retried.
		other, err := authn.NewServiceKeys(strings.Repeat("z", 40), "videos")
		if err != nil {
			t.Fatal(err)
		}
		err = rpc.New("test", srv.URL, other, nil).Call(t.Context(), "post", http.MethodPost, "/internal/v1/test/thing", nil, nil, true)
		if err == nil || errs.KindOf(err) != errs.Internal || len(got) != 0 {
			t.Fatalf("err %v", err)
		}
	})
}
