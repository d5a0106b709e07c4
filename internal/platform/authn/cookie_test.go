package authn_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/authn/authntest"
)

// The web app's access cookie authenticates API requests that carry no
// Authorization header; for methods that change something only when the
// browser says the request comes from the same origin.
func TestRequireAcceptsTheAccessCookie(t *testing.T) {
	iss := authntest.New(t)
	v := iss.Verifier()
	user, admin := authntest.NewUserID(), authntest.NewUserID()
	userTok, adminTok := iss.Token(t, user, authn.RoleUser), iss.Token(t, admin, authn.RoleAdmin)
	mux := http.NewServeMux()
	who := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := authn.CallerFrom(r.Context())
		_, _ = io.WriteString(w, c.UserID)
	})
	mux.Handle("/any", v.Require(who))
	mux.Handle("/admin", v.RequireAdmin(who))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	origin := srv.URL // http://127.0.0.1:port, the request's own origin

	type call struct {
		name, method, path, cookie, bearer string
		hdr                                []string
		status                             int
		code, who                          string
	}
	for _, c := range []call{
		{name: "GET with the cookie", method: "GET", path: "/any", cookie: userTok, status: 200, who: user},
		{name: "HEAD with the cookie", method: "HEAD", path: "/any", cookie: userTok, status: 200},
		{name: "no credentials", method: "GET", path: "/any", status: 401, code: "invalid_token"},
		{name: "a bad cookie", method: "GET", path: "/any", cookie: "nonsense", status: 401, code: "invalid_token"},
		{name: "an empty cookie", method: "GET", path: "/any", cookie: "", hdr: []string{"Cookie", authn.AccessCookie + "="}, status: 401, code: "invalid_token"},
		{name: "POST same-origin by Sec-Fetch-Site", method: "POST", path: "/any", cookie: userTok, hdr: []string{"Sec-Fetch-Site", "same-origin"}, status: 200, who: user},
		{name: "DELETE same-origin by Origin", method: "DELETE", path: "/any", cookie: userTok, hdr: []string{"Origin", origin}, status: 200, who: user},
		{name: "PATCH without Origin or Sec-Fetch-Site", method: "PATCH", path: "/any", cookie: userTok, status: 403, code: "cross_site_request"},
		{name: "POST cross-site", method: "POST", path: "/any", cookie: userTok, hdr: []string{"Sec-Fetch-Site", "cross-site", "Origin", origin}, status: 403, code: "cross_site_request"},
		{name: "POST same-site (another port)", method: "POST", path: "/any", cookie: userTok, hdr: []string{"Sec-Fetch-Site", "same-site"}, status: 403, code: "cross_site_request"},
		{name: "PUT from another origin", method: "PUT", path: "/any", cookie: userTok, hdr: []string{"Origin", "http://evil.example"}, status: 403, code: "cross_site_request"},
		{name: "POST from another scheme", method: "POST", path: "/any", cookie: userTok, hdr: []string{"Origin", strings.Replace(origin, "http:", "https:", 1)}, status: 403, code: "cross_site_request"},
		{name: "POST with Origin null", method: "POST", path: "/any", cookie: userTok, hdr: []string{"Origin", "null"}, status: 403, code: "cross_site_request"},
		{name: "POST through a TLS proxy", method: "POST", path: "/any", cookie: userTok, hdr: []string{"Origin", "https://videos.example", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "videos.example"}, status: 200, who: user},
		{name: "bearer requests need no origin", method: "POST", path: "/any", bearer: userTok, status: 200, who: user},
		{name: "a bearer header wins over the cookie", method: "GET", path: "/any", bearer: "nonsense", cookie: userTok, status: 401, code: "invalid_token"},
		{name: "admin by cookie", method: "POST", path: "/admin", cookie: adminTok, hdr: []string{"Sec-Fetch-Site", "same-origin"}, status: 200, who: admin},
		{name: "admin route, user cookie", method: "GET", path: "/admin", cookie: userTok, status: 403, code: "admin_required"},
		{name: "admin route, cross-site", method: "POST", path: "/admin", cookie: adminTok, hdr: []string{"Sec-Fetch-Site", "cross-site"}, status: 403, code: "cross_site_request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(c.method, srv.URL+c.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.cookie != "" {
				req.AddCookie(&http.Cookie{Name: authn.AccessCookie, Value: c.cookie})
			}
			if c.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+c.bearer)
			}
			for i := 0; i+1 < len(c.hdr); i += 2 {
				req.Header.Set(c.hdr[i], c.hdr[i+1])
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, c.status, body)
			}
			if c.who != "" && string(body) != c.who {
				t.Fatalf("caller %q, want %q", body, c.who)
			}
			if c.code != "" {
				var p struct{ Code string }
				if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Fatalf("content type %q", ct)
				}
				if err := json.Unmarshal(body, &p); err != nil || p.Code != c.code {
					t.Fatalf("code %q, want %q: %s", p.Code, c.code, body)
				}
			}
		})
	}
}

func TestSameOrigin(t *testing.T) {
	for _, c := range []struct {
		host string
		hdr  []string
		want bool
	}{
		{"reel.example", []string{"Sec-Fetch-Site", "same-origin"}, true},
		{"reel.example", []string{"Sec-Fetch-Site", "none"}, false},
		{"reel.example", []string{"Origin", "http://reel.example"}, true},
		{"reel.example:8080", []string{"Origin", "http://REEL.example:8080"}, true},
		{"reel.example:8080", []string{"Origin", "http://reel.example"}, false},
		{"reel.example", []string{"Origin", "http://reel.example.evil"}, false},
		{"reel.example", []string{"Origin", "http://user@reel.example"}, false},
		{"reel.example", []string{"Origin", "::"}, false},
		// Sec-Fetch-Site, when present, decides.
		{"reel.example", []string{"Sec-Fetch-Site", "cross-site", "Origin", "http://reel.example"}, false},
		{"reel.example", nil, false},
	} {
		r := httptest.NewRequest("POST", "http://"+c.host+"/x", nil)
		for i := 0; i+1 < len(c.hdr); i += 2 {
			r.Header.Set(c.hdr[i], c.hdr[i+1])
		}
		if got := authn.SameOrigin(r); got != c.want {
			t.Errorf("host %s, %v: %v, want %v", c.host, c.hdr, got, c.want)
		}
	}
}
