package gateway_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/gateway"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
)

// echo is an upstream that answers with what it received.
func echo(t *testing.T, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			w.WriteHeader(200)
			return
		}
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"service": name, "method": r.Method, "path": r.URL.RequestURI(),
			"xff": r.Header.Get("X-Forwarded-For"), "request_id": r.Header.Get("X-Request-ID"),
			"auth": r.Header.Get("Authorization"), "bytes": n, "sha": hex.EncodeToString(h.Sum(nil)),
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func deadURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

func start(t *testing.T, bases map[string]string, trusted ...netip.Prefix) *httptest.Server {
	t.Helper()
	g, err := gateway.New(bases, trusted, obs.Discard())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	g.Register(mux)
	srv := httptest.NewServer(httpx.Wrap(mux, httpx.MiddlewareConfig{Logger: obs.Discard(), TrustedProxies: trusted}))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, req *http.Request) (int, http.Header, map[string]any) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, res.Header, body
}

func TestRoutesToOwningService(t *testing.T) {
	bases := map[string]string{}
	for _, s := range gateway.Services() {
		bases[s] = echo(t, s).URL
	}
	gw := start(t, bases)
	cases := map[string]string{
		"POST /api/v1/auth/login":                   "users",
		"GET /api/v1/users/me":                      "users",
		"GET /api/v1/users":                         "users",
		"GET /.well-known/jwks.json":                "users",
		"GET /api/v1/videos?limit=2":                "videos",
		"GET /api/v1/videos/mine":                   "videos",
		"PATCH /api/v1/uploads/abc":                 "videos",
		"GET /api/v1/trash":                         "videos",
		"POST /api/v1/jobs/7/retry":                 "videos",
		"GET /media/tok/id/video.mp4":               "videos",
		"GET /api/v1/storage/me":                    "storage",
		"GET /api/v1/usage/users/x?from=2026-01-01": "usage",
		"GET /api/v1/logs/export?format=csv":        "logs",
		"GET /api/v1/logs":                          "logs",
		"POST /api/users/login":                     "users",
		"GET /api/videos/stream?start=0":            "videos",
		"GET /api/storage/usage":                    "storage",
		"GET /api/usage/daily-usage":                "usage",
		"GET /api/logs/all":                         "logs",
	}
	for route, svc := range cases {
		method, path, _ := strings.Cut(route, " ")
		req, _ := http.NewRequest(method, gw.URL+path, nil)
		req.Header.Set("Authorization", "Bearer abc")
		req.Header.Set("X-Request-ID", "rid-1")
		st, _, body := get(t, req)
		if st != 200 || body["service"] != svc || body["path"] != path || body["auth"] != "Bearer abc" || body["request_id"] != "rid-1" {
			t.Errorf("%s: %d %v", route, st, body)
		}
	}
	// Internal routes are never routed.
	req, _ := http.NewRequest("POST", gw.URL+"/internal/v1/logs/events", strings.NewReader("[]"))
	if st, _, body := get(t, req); st != 404 || body["code"] != "not_found" {
		t.Fatalf("internal: %d %v", st, body)
	}
}

func TestForwardedFor(t *testing.T) {
	bases := map[string]string{}
	for _, s := range gateway.Services() {
		bases[s] = echo(t, s).URL
	}
	// Untrusted client: its own X-Forwarded-For is dropped.
	gw := start(t, bases)
	req, _ := http.NewRequest("GET", gw.URL+"/api/v1/storage/me", nil)
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	if _, _, body := get(t, req); body["xff"] != "127.0.0.1" {
		t.Fatalf("untrusted xff: %v", body["xff"])
	}
	// Behind a trusted proxy: the chain is extended.
	gw2 := start(t, bases, netip.MustParsePrefix("127.0.0.1/32"))
	req, _ = http.NewRequest("GET", gw2.URL+"/api/v1/storage/me", nil)
	req.Header.Set("X-Forwarded-For", "198.51.100.4")
	if _, _, body := get(t, req); body["xff"] != "198.51.100.4, 127.0.0.1" {
		t.Fatalf("trusted xff: %v", body["xff"])
	}
}

func TestUnreachableServiceIs503(t *testing.T) {
	bases := map[string]string{}
	for _, s := range gateway.Services() {
		bases[s] = echo(t, s).URL
	}
	bases["storage"] = deadURL(t)
	gw := start(t, bases)
	req, _ := http.NewRequest("GET", gw.URL+"/api/v1/storage/me", nil)
	st, hdr, body := get(t, req)
	if st != 503 || hdr.Get("Retry-After") == "" || hdr.Get("Content-Type") != "application/problem+json" || body["code"] != "service_unavailable" {
		t.Fatalf("%d %v %v", st, hdr, body)
	}
	if strings.Contains(body["detail"].(string), "127.0.0.1") {
		t.Fatal("internal address leaked")
	}
	g, _ := gateway.New(bases, nil, obs.Discard())
	failed := 0
	for name, check := range g.Checks() {
		if err := check(context.Background()); err != nil {
			if name != "service:storage" {
				t.Fatalf("%s: %v", name, err)
			}
			failed++
		}
	}
	if failed != 1 {
		t.Fatal("readiness should name the storage service only")
	}
}

func TestMissingServiceURL(t *testing.T) {
	_, err := gateway.New(map[string]string{"users": "http://u"}, nil, obs.Discard())
	if err == nil || !strings.Contains(err.Error(), "REEL_VIDEOS_URL") {
		t.Fatalf("%v", err)
	}
	_, err = gateway.New(map[string]string{"users": "ftp://x", "videos": "http://v", "logs": "http://l", "storage": "http://s", "usage": "http://u"}, nil, obs.Discard())
	if err == nil || !strings.Contains(err.Error(), "REEL_USERS_URL") {
		t.Fatalf("%v", err)
	}
}

// A large upload streams through without being buffered in the gateway.
func TestStreamsLargeBodies(t *testing.T) {
	bases := map[string]string{}
	for _, s := range gateway.Services() {
		bases[s] = echo(t, s).URL
	}
	gw := start(t, bases)
	const size = 256 << 20
	src := io.LimitReader(zeroReader{}, size)
	h := sha256.New()
	_, _ = io.Copy(h, io.LimitReader(zeroReader{}, size))
	var before, peak runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.HeapAlloc {
				peak = m
			}
			runtime.Gosched()
		}
	}()
	req, _ := http.NewRequest("POST", gw.URL+"/api/v1/videos", src)
	req.ContentLength = size
	st, _, body := get(t, req)
	close(stop)
	<-done
	if st != 200 || body["bytes"].(float64) != size || body["sha"] != hex.EncodeToString(h.Sum(nil)) {
		t.Fatalf("%d %v", st, body)
	}
	if growth := int64(peak.HeapAlloc) - int64(before.HeapAlloc); growth > 32<<20 {
		t.Fatalf("heap grew by %d MiB while proxying %d MiB", growth>>20, size>>20)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i)
	}
	return len(p), nil
}

// A service behind the gateway that also answers CORS must not double the
// gateway's own Access-Control headers: browsers refuse two origins.
func TestCORSIsTheGatewaysAlone(t *testing.T) {
	upstream := httptest.NewServer(httpx.CORS([]string{"https://app.example"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	})))
	t.Cleanup(upstream.Close)
	bases := map[string]string{}
	for _, svc := range gateway.Services() {
		bases[svc] = upstream.URL
	}
	g, err := gateway.New(bases, nil, obs.Discard())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	g.Register(mux)
	srv := httptest.NewServer(httpx.CORS([]string{"https://app.example"}, mux))
	t.Cleanup(srv.Close)

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/videos", nil)
	req.Header.Set("Origin", "https://app.example")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != "https://app.example" {
		t.Fatalf("Access-Control-Allow-Origin %q, want exactly one", got)
	}
	if got := res.Header.Values("Access-Control-Expose-Headers"); len(got) != 1 || !strings.Contains(got[0], "Reel-Video-Id") {
		t.Fatalf("Access-Control-Expose-Headers %q", got)
	}
}

// A body cut off at the gateway as too slow, while a replica that was cut
// off the network waits for it, is answered with a problem, never an empty 200 (a
// tus client would take that for its PATCH accepted).
func TestSlowBodyIsAnError(t *testing.T) {
	bases := map[string]string{}
	for _, s := range gateway.Services() {
		bases[s] = echo(t, s).URL
	}
	// The videos replica takes the connection and is then cut off: it
	// reads nothing and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	bases["videos"] = "http://" + ln.Addr().String()
	g, err := gateway.New(bases, nil, obs.Discard())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	g.Register(mux)
	gw := httptest.NewServer(httpx.Wrap(mux, httpx.MiddlewareConfig{Logger: obs.Discard(),
		BodyRate: httpx.BodyRate{MinBytes: 1 << 10, Window: time.Second}}))
	t.Cleanup(gw.Close)
	conn, err := net.Dial("tcp", gw.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PATCH /api/v1/uploads/x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", 1<<20, strings.Repeat("a", 100))
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	_ = res.Body.Close()
	if res.StatusCode < 400 || res.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("a stalled body answered %d %v", res.StatusCode, res.Header)
	}
}
