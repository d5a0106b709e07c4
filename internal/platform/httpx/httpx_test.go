package httpx_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	cases := []struct {
		remote, xff, want string
	}{
		{"203.0.113.9:1234", "", "203.0.113.9"},
		{"203.0.113.9:1234", "1.2.3.4", "203.0.113.9"},            // untrusted peer: header ignored
		{"10.1.2.3:80", "198.51.100.7", "198.51.100.7"},           // trusted proxy
		{"10.1.2.3:80", "6.6.6.6, 198.51.100.7", "198.51.100.7"},  // a client-forged first hop is skipped
		{"10.1.2.3:80", "198.51.100.7, 10.9.9.9", "198.51.100.7"}, // chain of trusted proxies
		{"10.1.2.3:80", "garbage", "10.1.2.3"},                    // unparsable: the proxy itself
		{"[::1]:80", "2001:db8::1", "2001:db8::1"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := httpx.ClientIP(r, trusted); got != c.want {
			t.Errorf("%s + %q: got %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}

func TestWrap(t *testing.T) {
	mux := http.NewServeMux()
	var seen obs.Request
	mux.HandleFunc("GET /ok/{id}", func(w http.ResponseWriter, r *http.Request) {
		seen = obs.RequestFrom(r.Context())
		httpx.JSON(w, 200, map[string]string{"ok": "yes"})
	})
	mux.HandleFunc("GET /panic", func(http.ResponseWriter, *http.Request) { panic("secret internal detail") })
	mux.Handle("GET /fail", httpx.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		return errors.New("pq: password authentication failed for user reel")
	}))
	mux.Handle("GET /limited", httpx.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		return errs.New(errs.RateLimited, "slow_down", "slow down").WithRetryAfter(1500 * time.Millisecond)
	}))
	reg := prometheus.NewRegistry()
	m := httpx.NewMetrics(reg)
	var logs lockedBuffer
	srv := httptest.NewServer(httpx.Wrap(mux, httpx.MiddlewareConfig{Logger: obs.NewLogger(&logs, "info", "json"), Metrics: m}))
	defer srv.Close()

	get := func(path string, hdr ...string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, string(b)
	}

	res, _ := get("/ok/1", "X-Request-ID", "abc-123", "User-Agent", "tester")
	if res.Header.Get("X-Request-ID") != "abc-123" || seen.ID != "abc-123" || seen.UserAgent != "tester" || seen.IP != "127.0.0.1" {
		t.Fatalf("request id not honoured: %v %+v", res.Header, seen)
	}
	res, _ = get("/ok/2", "X-Request-ID", "bad id with spaces "+strings.Repeat("x", 200))
	if id := res.Header.Get("X-Request-ID"); id == "" || strings.Contains(id, " ") {
		t.Fatalf("bad request id echoed: %q", id)
	}
	for _, path := range []string{"/panic", "/fail"} {
		res, body := get(path)
		if res.StatusCode != 500 || strings.Contains(body, "secret") || strings.Contains(body, "password") {
			t.Fatalf("%s: %d %s", path, res.StatusCode, body)
		}
		var p httpx.Problem
		if err := json.Unmarshal([]byte(body), &p); err != nil || p.Code != "internal" || p.RequestID == "" {
			t.Fatalf("%s: problem %s", path, body)
		}
	}
	// The access line and the error logged for a request carry its id.
	res, _ = get("/fail", "X-Request-ID", "fail-42")
	var access, failed bool
	for line := range strings.SplitSeq(logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["request_id"] != "fail-42" {
			continue
		}
		access = access || (rec["msg"] == "request" && rec["path"] == "/fail")
		failed = failed || rec["msg"] == "request failed"
	}
	if !access || !failed {
		t.Fatalf("request id missing from the access line (%v) or the error (%v):\n%s", access, failed, logs.String())
	}
	res, _ = get("/limited")
	if res.StatusCode != 429 || res.Header.Get("Retry-After") != "2" {
		t.Fatalf("retry-after: %d %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	// Metrics are labelled by route pattern, not raw path.
	if n := routeCount(t, reg, "GET /ok/{id}"); n != 2 {
		t.Fatalf("route counter %v", n)
	}
}

func routeCount(t *testing.T, reg *prometheus.Registry, route string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "reel_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" && l.GetValue() == route {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

func TestDecode(t *testing.T) {
	type body struct {
		Name string `json:"name"`
		N    int    `json:"n"`
	}
	cases := []struct {
		in, ct string
		code   string
	}{
		{`{"name":"a","n":1}`, "application/json", ""},
		{`{"name":"a"}`, "", ""},
		{`{"name":"a"} x`, "application/json", "malformed_json"},
		{`{"name":1}`, "application/json", "invalid_field"},
		{`{"other":1}`, "application/json", "invalid_field"},
		{`{"name":`, "application/json", "malformed_json"},
		{``, "application/json", "malformed_json"},
		{`"str"`, "application/json", "malformed_json"},
		{`{"name":"a"}`, "text/plain", "unsupported_content_type"},
		{`{"name":"` + strings.Repeat("a", 100) + `"}`, "application/json", "body_too_large"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("POST", "/", strings.NewReader(c.in))
		if c.ct != "" {
			r.Header.Set("Content-Type", c.ct)
		}
		var b body
		err := httpx.Decode(httptest.NewRecorder(), r, &b, 64)
		e, _ := errs.As(err)
		got := ""
		if e != nil {
			got = e.Code
		} else if err != nil {
			got = "unclassified: " + err.Error()
		}
		if got != c.code {
			t.Errorf("%q: got %q, want %q", c.in, got, c.code)
		}
	}
}

func TestCORS(t *testing.T) {
	h := httpx.CORS([]string{"https://app.example.com"}, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	do := func(method, origin string, hdr ...string) *http.Response {
		req, _ := http.NewRequest(method, srv.URL+"/api/v1/videos", nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	res := do("OPTIONS", "https://app.example.com", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization")
	if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		res.Header.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("allowed preflight: %d %v", res.StatusCode, res.Header)
	}
	res = do("OPTIONS", "https://evil.example.com", "Access-Control-Request-Method", "POST")
	if res.StatusCode != 403 || res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("refused preflight: %d %v", res.StatusCode, res.Header)
	}
	res = do("GET", "https://app.example.com")
	if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("allowed request: %v", res.Header)
	}
	res = do("GET", "https://evil.example.com")
	if res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("refused request got CORS headers: %v", res.Header)
	}
	if res = do("GET", ""); res.StatusCode != 200 {
		t.Fatal("same-origin request")
	}
}

// lockedBuffer is a bytes.Buffer that handlers may write concurrently.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// KindOf is StatusOf's inverse for every kind.
func TestKindOfStatus(t *testing.T) {
	for k := errs.Invalid; k <= errs.Timeout; k++ {
		if got := httpx.KindOf(httpx.StatusOf(k)); got != k {
			t.Errorf("kind %d: status %d maps back to %d", k, httpx.StatusOf(k), got)
		}
	}
	for _, status := range []int{200, 418, 500, 502} {
		if got := httpx.KindOf(status); got != errs.Internal {
			t.Errorf("status %d: kind %d, want Internal", status, got)
		}
	}
}
