package httpx_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/reel-video/reel/internal/platform/httpx"
)

func TestRoutedAnswersProblems(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /things", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("GET /dir/", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "dir") })
	srv := httptest.NewServer(httpx.Routed(mux))
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	do := func(method, path string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	if resp, b := do("GET", "/things"); resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("matched route: %d %q", resp.StatusCode, b)
	}
	for _, c := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/nope", 404, "not_found", ""},
		{"DELETE", "/things", 405, "method_not_allowed", "GET, HEAD"},
	} {
		resp, b := do(c.method, c.path)
		var p httpx.Problem
		if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(b, &p) != nil || p.Code != c.code || p.Status != c.status {
			t.Fatalf("%s %s: %d %s %q", c.method, c.path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		if got := resp.Header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
	}
	// The mux's redirects pass through untouched.
	if resp, _ := do("GET", "/dir"); resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/dir/" {
		t.Fatalf("redirect: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}
