package web_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/media/mediatest"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

const wantCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

var assetRef = regexp.MustCompile(`(?:href|src)="(/static/[^"]+)"`)

// Every page carries the security headers; no page holds inline script or
// style; static files have versioned URLs, ETags and a year's cache.
func TestHeadersAndAssets(t *testing.T) {
	r := startReel(t, nil)
	b := r.browser()
	p := b.get("/login")
	if p.status != 200 {
		t.Fatalf("login page: %d", p.status)
	}
	for k, want := range map[string]string{
		"Content-Security-Policy": wantCSP, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
		"Referrer-Policy": "same-origin", "Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8",
	} {
		if got := p.header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if strings.Contains(p.body, "style=") || strings.Contains(p.body, "<style") || regexp.MustCompile(`<script(?:[^>]*)>[^<]`).MatchString(p.body) || strings.Contains(p.body, " on") && regexp.MustCompile(` on[a-z]+=`).MatchString(p.body) {
		t.Fatalf("inline script or style in the page:\n%s", p.body)
	}
	refs := assetRef.FindAllStringSubmatch(p.body, -1)
	if len(refs) < 3 {
		t.Fatalf("asset references: %v", refs)
	}
	css := ""
	for _, m := range refs {
		if strings.HasSuffix(m[1], ".css") {
			css = m[1]
		}
	}
	a := b.get(css)
	if a.status != 200 || a.header.Get("Cache-Control") != "public, max-age=31536000, immutable" || a.header.Get("ETag") == "" ||
		a.header.Get("Content-Type") != "text/css; charset=utf-8" || a.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("asset: %d %v", a.status, a.header)
	}
	if c := b.get(css, "If-None-Match", a.header.Get("ETag")); c.status != http.StatusNotModified {
		t.Fatalf("revalidation: %d", c.status)
	}
	// A page of an older release asks for its version: today's file,
	// revalidated rather than kept.
	old := regexp.MustCompile(`/static/[^/]+/`).ReplaceAllString(css, "/static/0ld/")
	if o := b.get(old); o.status != 200 || o.header.Get("Cache-Control") != "no-cache" || o.body != a.body {
		t.Fatalf("old version: %d %v", o.status, o.header)
	}
	if n := b.get(regexp.MustCompile(`[^/]+\.css$`).ReplaceAllString(css, "nope.css")); n.status != 404 {
		t.Fatalf("unknown asset: %d", n.status)
	}
	// An unknown path stays the API's 404, not a page.
	if n := b.get("/no/such/page"); n.status != 404 || !strings.Contains(n.header.Get("Content-Type"), "problem+json") {
		t.Fatalf("unknown path: %d %s", n.status, n.header.Get("Content-Type"))
	}
}

// The page weight budget: under 60 KB of our own JavaScript and CSS on
// any page, uncompressed. Every page loads the style sheet and app.js, and
// at most one module of its own with its imports; the whole set is
// counted, which bounds every page.
func TestPageWeight(t *testing.T) {
	total := int64(0)
	for _, dir := range []string{"static", "static/js"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() || !(strings.HasSuffix(e.Name(), ".js") || strings.HasSuffix(e.Name(), ".css")) {
				continue
			}
			fi, _ := e.Info()
			total += fi.Size()
		}
	}
	t.Logf("our own JavaScript and CSS: %d bytes", total)
	if total >= 60_000 {
		t.Fatalf("%d bytes of JavaScript and CSS, over the 60 KB budget", total)
	}
}

// The first run: the log holds a one-time link that creates the admin,
// once; a wrong token or a cross-site post gets nothing.
func TestFirstRunSetup(t *testing.T) {
	deployments(t, nil, func(t *testing.T, r *reel) {
		link := r.setupURL()
		path := strings.TrimPrefix(link, r.base)
		b := r.browser()
		if p := b.get(path); p.status != 200 || !strings.Contains(p.body, "Create the admin account") {
			t.Fatalf("setup page: %d", p.status)
		}
		if p := b.get("/setup/not-the-token"); p.status != 404 {
			t.Fatalf("wrong token: %d", p.status)
		}
		form := url.Values{"email": {"root@example.com"}, "username": {"root"}, "password": {"correct horse"}, "confirm": {"correct horse"}}
		if p := b.post(path, form, "Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example"); p.status != 403 {
			t.Fatalf("cross-site setup: %d", p.status)
		}
		bad := url.Values{"email": {"root@example.com"}, "username": {"root"}, "password": {"correct horse"}, "confirm": {"other horse"}}
		if p := b.post(path, bad); p.status != 422 || !strings.Contains(p.body, "The second password must be the same") {
			t.Fatalf("mismatched passwords: %d %s", p.status, p.body)
		}
		p := b.post(path, form)
		if p.status != 200 || !strings.HasSuffix(p.url, "/admin/users?done=welcome") || !strings.Contains(p.body, "root@example.com") {
			t.Fatalf("setup: %d %s", p.status, p.url)
		}
		// Spent: the link no longer works, for anyone.
		if p := r.browser().get(path); p.status != 404 {
			t.Fatalf("setup link after use: %d", p.status)
		}
		if p := r.browser().post(path, form); p.status != 404 {
			t.Fatalf("second setup: %d", p.status)
		}
		// The admin logs in with the password chosen; no other admin exists.
		st, body := r.api("POST", "/api/v1/auth/login", "", map[string]string{"email": "root@example.com", "password": "correct horse"})
		if st != 200 || body["user"].(map[string]any)["role"] != "admin" {
			t.Fatalf("admin login: %d %v", st, body)
		}
	})
}

// With an admin configured, no setup link is printed.
func TestNoSetupLinkWithAnAdmin(t *testing.T) {
	r := startReel(t, map[string]string{"REEL_ADMIN_EMAIL": "boss@example.com", "REEL_ADMIN_PASSWORD": "correct horse"})
	r.browser().get("/login") // the first-run task has run by the time the server answers... or very soon after
	if strings.Contains(r.logs.String(), "/setup/") {
		t.Fatal("setup link printed although an admin exists")
	}
}

// The session cookies: HttpOnly, SameSite=Lax, the refresh token only
// under /auth/, Secure when the request came over TLS (here through a
// trusted proxy).
func TestSessionCookies(t *testing.T) {
	r := startReel(t, map[string]string{"REEL_TRUSTED_PROXIES": "127.0.0.1/32"})
	r.account("ann@example.com", "ann")
	for _, tc := range []struct {
		name   string
		hdr    []string
		secure bool
	}{
		{"plain http", nil, false},
		{"https through a trusted proxy", []string{"X-Forwarded-Proto", "https"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := r.browser()
			b.follow = false
			p := b.post("/login", url.Values{"email": {"ann@example.com"}, "password": {"correct horse"}, "next": {"/mine"}}, tc.hdr...)
			if p.status != http.StatusSeeOther || p.header.Get("Location") != "/mine" {
				t.Fatalf("login: %d %s", p.status, p.header.Get("Location"))
			}
			res := &http.Response{Header: p.header}
			got := map[string]*http.Cookie{}
			for _, c := range res.Cookies() {
				got[c.Name] = c
			}
			access, refresh := got["reel_access"], got["reel_refresh"]
			if access == nil || refresh == nil {
				t.Fatalf("cookies: %v", p.header["Set-Cookie"])
			}
			for _, c := range []*http.Cookie{access, refresh} {
				if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != tc.secure || c.Value == "" {
					t.Errorf("%s: %+v", c.Name, c)
				}
			}
			if access.Path != "/" || access.MaxAge != 900 {
				t.Errorf("access cookie: path %q max-age %d", access.Path, access.MaxAge)
			}
			if refresh.Path != "/auth/" || refresh.MaxAge != 30*24*3600 {
				t.Errorf("refresh cookie: path %q max-age %d", refresh.Path, refresh.MaxAge)
			}
		})
	}
	// The X-Forwarded-Proto of a peer that is not a trusted proxy is not
	// believed.
	r2 := startReel(t, nil)
	r2.account("bob@example.com", "bob")
	b := r2.browser()
	b.follow = false
	p := b.post("/login", url.Values{"email": {"bob@example.com"}, "password": {"correct horse"}}, "X-Forwarded-Proto", "https")
	if !strings.Contains(strings.Join(p.header["Set-Cookie"], ";"), "reel_access=") || strings.Contains(strings.Join(p.header["Set-Cookie"], ";"), "Secure") {
		t.Fatalf("untrusted proxy: %v", p.header["Set-Cookie"])
	}
}

// Cross-site requests: the cookie authenticates the API for the page's
// scripts, but a state change needs the same origin; the web's own form
// posts check the same.
func TestCrossSiteRefused(t *testing.T) {
	deployments(t, nil, func(t *testing.T, r *reel) {
		token, _ := r.account("ann@example.com", "ann")
		id := r.upload(token, "clip", clip(t))
		b := r.browser()
		b.login("ann@example.com", "correct horse")

		// The page's scripts read the API with the cookie alone.
		if p := b.get("/api/v1/storage/me"); p.status != 200 {
			t.Fatalf("API read with the cookie: %d %s", p.status, p.body)
		}
		// Forms posted from elsewhere are refused, with the session intact.
		for _, hdr := range [][]string{
			{"Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example"},
			{"Sec-Fetch-Site", "", "Origin", "http://evil.example"},
			{"Sec-Fetch-Site", "", "Origin", ""},
			{"Sec-Fetch-Site", "same-site", "Origin", ""},
		} {
			p := b.post("/videos/"+id+"/delete", nil, hdr...)
			if p.status != 403 || !strings.Contains(p.body, "must come from this site") {
				t.Fatalf("cross-site form %v: %d", hdr, p.status)
			}
			if p := b.post("/auth/logout", nil, hdr...); p.status != 403 {
				t.Fatalf("cross-site logout %v: %d", hdr, p.status)
			}
		}
		// The API refuses a cookie-authenticated DELETE without the same
		// origin, and takes it with.
		req, _ := http.NewRequest("DELETE", r.base+"/api/v1/videos/"+id, nil)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if p := b.do(req); p.status != 403 || !strings.Contains(p.body, "cross_site_request") {
			t.Fatalf("cross-site API delete: %d %s", p.status, p.body)
		}
		if st, body := r.api("GET", "/api/v1/videos/"+id, token, nil); st != 200 || body["video"].(map[string]any)["deleted_at"] != nil {
			t.Fatalf("the video was deleted: %d %v", st, body)
		}
		req, _ = http.NewRequest("DELETE", r.base+"/api/v1/videos/"+id, nil)
		req.Header.Set("Origin", r.base)
		if p := b.do(req); p.status != 204 {
			t.Fatalf("same-origin API delete: %d %s", p.status, p.body)
		}
	})
}

// A page whose access cookie has expired goes through the refresh route,
// which rotates the refresh token, and back; without a session, to the
// login page and back after it.
func TestRefreshAndRedirects(t *testing.T) {
	deployments(t, nil, func(t *testing.T, r *reel) {
		r.account("ann@example.com", "ann")
		anon := r.browser()
		if p := anon.get("/mine?x=1"); p.status != 200 || !strings.HasSuffix(p.url, "/login?next=%2Fmine%3Fx%3D1") {
			t.Fatalf("signed out: %d %s", p.status, p.url)
		}
		// The login form sends the browser back, but only to this site.
		if p := anon.post("/login", url.Values{"email": {"ann@example.com"}, "password": {"wrong horse"}, "next": {"/mine"}}); p.status != 401 ||
			!strings.Contains(p.body, "The email or password is wrong.") || !strings.Contains(p.body, `value="ann@example.com"`) {
			t.Fatalf("wrong password: %d", p.status)
		}
		anon.follow = false
		for next, want := range map[string]string{"/mine?x=1": "/mine?x=1", "//evil.example/": "/", "https://evil.example/": "/", "/\\evil.example": "/", "/auth/logout": "/"} {
			p := anon.post("/login", url.Values{"email": {"ann@example.com"}, "password": {"correct horse"}, "next": {next}})
			if p.status != 303 || p.header.Get("Location") != want {
				t.Fatalf("next %q: %d %q, want %q", next, p.status, p.header.Get("Location"), want)
			}
		}
		anon.follow = true

		b := r.browser()
		b.login("ann@example.com", "correct horse")
		refresh := b.cookie("/auth/refresh", "reel_refresh")
		if refresh == "" || b.cookie("/mine", "reel_refresh") != "" {
			t.Fatal("the refresh cookie must be sent to /auth/ only")
		}
		// Drop the access cookie, as the browser does when it expires.
		u, _ := url.Parse(r.base + "/")
		b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "reel_access", Value: "", Path: "/", MaxAge: -1}})
		p := b.get("/mine")
		if p.status != 200 || !strings.HasSuffix(p.url, "/mine") || !strings.Contains(p.body, "My videos") {
			t.Fatalf("after expiry: %d %s", p.status, p.url)
		}
		rotated := b.cookie("/auth/refresh", "reel_refresh")
		if rotated == "" || rotated == refresh {
			t.Fatal("the refresh token was not rotated")
		}
		// The scripts' refresh: same origin only, answers the new lifetime.
		req, _ := http.NewRequest("POST", r.base+"/auth/refresh", nil)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if p := b.do(req); p.status != 403 {
			t.Fatalf("cross-site refresh: %d", p.status)
		}
		req, _ = http.NewRequest("POST", r.base+"/auth/refresh", nil)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		if p := b.do(req); p.status != 200 || !strings.Contains(p.body, `"expires_in":900`) || b.cookie("/auth/refresh", "reel_refresh") == rotated {
			t.Fatalf("script refresh: %d %s", p.status, p.body)
		}
		// A navigation from another site to the refresh route rotates nothing.
		before := b.cookie("/auth/refresh", "reel_refresh")
		b.follow = false
		p = b.get("/auth/refresh?next=/mine", "Sec-Fetch-Site", "cross-site")
		if p.status != 303 || !strings.HasPrefix(p.header.Get("Location"), "/login") || b.cookie("/auth/refresh", "reel_refresh") != before {
			t.Fatalf("cross-site refresh navigation: %d %s", p.status, p.header.Get("Location"))
		}
		b.follow = true
		// A stolen, rotated refresh token replayed after the grace window:
		// the whole family is revoked (the users service's reuse detection).
		st, _ := r.api("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh})
		if st != 401 {
			t.Fatalf("replayed refresh token: %d", st)
		}
		b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "reel_access", Value: "", Path: "/", MaxAge: -1}})
		if p := b.get("/mine"); !strings.Contains(p.url, "/login?next=") {
			t.Fatalf("after reuse the session must be gone: %s", p.url)
		}
	})
}

// Logging out revokes the refresh token and clears both cookies.
func TestLogout(t *testing.T) {
	deployments(t, nil, func(t *testing.T, r *reel) {
		r.account("ann@example.com", "ann")
		b := r.browser()
		b.login("ann@example.com", "correct horse")
		refresh := b.cookie("/auth/refresh", "reel_refresh")
		p := b.post("/auth/logout", nil)
		if p.status != 200 || !strings.Contains(p.body, "You are signed out.") {
			t.Fatalf("logout: %d %s", p.status, p.url)
		}
		if b.cookie("/", "reel_access") != "" || b.cookie("/auth/refresh", "reel_refresh") != "" {
			t.Fatal("cookies left after logout")
		}
		if st, _ := r.api("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh}); st != 401 {
			t.Fatalf("refresh token after logout: %d", st)
		}
		// With the access cookie expired already, the refresh token alone
		// says whose session ends.
		b.login("ann@example.com", "correct horse")
		refresh = b.cookie("/auth/refresh", "reel_refresh")
		u, _ := url.Parse(r.base + "/")
		b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "reel_access", Value: "", Path: "/", MaxAge: -1}})
		if p := b.post("/auth/logout", nil); p.status != 200 {
			t.Fatalf("logout without access cookie: %d", p.status)
		}
		if b.cookie("/auth/refresh", "reel_refresh") != "" {
			t.Fatal("refresh cookie left")
		}
		if st, _ := r.api("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh}); st != 401 {
			t.Fatalf("refresh token after logout: %d", st)
		}
	})
}

var (
	clipOnce  sync.Once
	clipBytes []byte
)

// clip is a small real video, made once per test binary run.
func clip(t testing.TB) []byte {
	t.Helper()
	clipOnce.Do(func() {
		path := mediatest.Video(t, os.TempDir(), 2, 160, 120)
		clipBytes, _ = os.ReadFile(path)
		_ = os.Remove(path)
	})
	if len(clipBytes) == 0 {
		mediatest.Tools(t) // skips or fails loudly without ffmpeg
		t.Fatal("no test clip")
	}
	return clipBytes
}

// The pages over both database engines and split (served by the gateway
// on the services over HTTP): feed and search, watch, my videos with
// rename and trash, the trash with restore, usage, account, admin.
func TestPages(t *testing.T) {
	env := map[string]string{"REEL_ADMIN_EMAIL": "root@example.com", "REEL_ADMIN_PASSWORD": "correct horse"}
	sqldbtest.Engines(t, func(t *testing.T, dbURL string) {
		pages(t, startReel(t, merge(env, map[string]string{"REEL_DATABASE_URL": dbURL})))
	})
	t.Run("split", func(t *testing.T) { pages(t, startSplit(t, env)) })
}

func pages(t *testing.T, r *reel) {
	annTok, annID := r.account("ann@example.com", "Ann")
	bobTok, _ := r.account("bob@example.com", "Bob")
	cats := r.upload(annTok, "Cats <at> play", clip(t))
	r.upload(bobTok, "Dogs 100%", clip(t))

	ann := r.browser()
	ann.login("ann@example.com", "correct horse")
	home := ann.get("/")
	for _, want := range []string{"Cats &lt;at&gt; play", "Dogs 100%", "Ann", "Bob", "0:02", `href="/watch/` + cats + `"`} {
		if !strings.Contains(home.body, want) {
			t.Fatalf("feed lacks %q:\n%s", want, home.body)
		}
	}
	search := ann.get("/?q=" + url.QueryEscape("100%"))
	if !strings.Contains(search.body, "Dogs 100%") || strings.Contains(search.body, "Cats &lt;at&gt;") {
		t.Fatalf("search: %s", search.body)
	}
	if p := ann.get("/?q=zebra"); !strings.Contains(p.body, "No video title contains") {
		t.Fatal("empty search")
	}
	if p := ann.get("/?cursor=!!"); p.status != 400 {
		t.Fatalf("bad cursor: %d", p.status)
	}

	watch := ann.get("/watch/" + cats)
	if watch.status != 200 || !regexp.MustCompile(`<video id="player"[^>]* src="/media/[^"]+/`+cats+`/(video|\d+)\.mp4"`).MatchString(watch.body) ||
		!strings.Contains(watch.body, "Viewing left today") {
		t.Fatalf("watch: %d %s", watch.status, watch.body)
	}
	if p := ann.get("/watch/00000000-0000-0000-0000-000000000000"); p.status != 404 || !strings.Contains(p.body, "No such video.") {
		t.Fatalf("unknown video: %d", p.status)
	}

	mine := ann.get("/mine")
	if !strings.Contains(mine.body, "Cats &lt;at&gt; play") || strings.Contains(mine.body, "Dogs 100%") {
		t.Fatalf("mine: %s", mine.body)
	}
	if p := ann.post("/videos/"+cats+"/rename", url.Values{"title": {""}}); p.status != 422 || !strings.Contains(p.body, "class=\"error\"") {
		t.Fatalf("empty title: %d", p.status)
	}
	if p := ann.post("/videos/"+cats+"/rename", url.Values{"title": {"Cats asleep"}}); !strings.Contains(p.body, "The title is changed.") || !strings.Contains(p.body, "Cats asleep") {
		t.Fatalf("rename: %d %s", p.status, p.body)
	}
	bob := r.browser()
	bob.login("bob@example.com", "correct horse")
	if p := bob.post("/videos/"+cats+"/delete", nil); p.status != 404 {
		t.Fatalf("bob deletes ann's video: %d", p.status)
	}
	if p := ann.post("/videos/"+cats+"/delete", nil); !strings.Contains(p.body, "The video is in the trash") || strings.Contains(p.body, "Cats asleep") {
		t.Fatalf("delete: %d", p.status)
	}
	trash := ann.get("/trash")
	if !strings.Contains(trash.body, "Cats asleep") || !strings.Contains(trash.body, "Deleted for good on") {
		t.Fatalf("trash: %s", trash.body)
	}
	if p := ann.post("/videos/"+cats+"/restore", nil); !strings.Contains(p.body, "The video is back") || !strings.Contains(p.body, "Cats asleep") {
		t.Fatalf("restore: %d", p.status)
	}
	if p := ann.get("/usage"); !strings.Contains(p.body, "of 50 MiB") || !strings.Contains(p.body, "Uploaded today") || !strings.Contains(p.body, "<meter") {
		t.Fatalf("usage: %s", p.body)
	}
	if p := ann.get("/upload"); !strings.Contains(p.body, `data-max-size="2147483648"`) || !strings.Contains(p.body, "free") {
		t.Fatalf("upload page: %s", p.body)
	}

	// Admin pages are for admins.
	if p := ann.get("/admin/users"); p.status != 403 {
		t.Fatalf("admin page for a user: %d", p.status)
	}
	root := r.browser()
	root.login("root@example.com", "correct horse")
	_, rootBody := r.api("POST", "/api/v1/auth/login", "", map[string]string{"email": "root@example.com", "password": "correct horse"})
	rootID := rootBody["user"].(map[string]any)["id"].(string)
	if p := root.get("/admin/users?q=ANN"); !strings.Contains(p.body, "ann@example.com") || strings.Contains(p.body, "bob@example.com") {
		t.Fatalf("user search: %s", p.body)
	}
	user := root.get("/admin/users/" + annID)
	if !strings.Contains(user.body, `value="50MiB"`) || !strings.Contains(user.body, `value="100MiB"`) {
		t.Fatalf("user page: %s", user.body)
	}
	form := url.Values{"role": {"user"}, "quota": {"2GiB"}, "daily_upload": {"100MiB"}, "daily_egress": {"unlimited"}}
	if p := root.post("/admin/users/"+annID, form); !strings.Contains(p.body, "The account is saved.") || !strings.Contains(p.body, `value="2GiB"`) || !strings.Contains(p.body, `value="unlimited"`) {
		t.Fatalf("admin update: %d %s", p.status, p.body)
	}
	if st, body := r.api("GET", "/api/v1/storage/me", annTok, nil); st != 200 || body["quota_bytes"].(float64) != 2<<30 {
		t.Fatalf("quota after the admin's change: %v", body)
	}
	form.Set("quota", "lots")
	if p := root.post("/admin/users/"+annID, form); p.status != 422 || !strings.Contains(p.body, "The quota must be a size") {
		t.Fatalf("bad quota: %d", p.status)
	}
	// Events reach the log through the outbox relay, soon after.
	var log page
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		log = root.get("/admin/log?action=UPDATE_USER&user_id=")
		if strings.Contains(log.body, "admin updated account ann@example.com") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log page: %s", log.body)
		}
	}
	m := regexp.MustCompile(`href="(/api/v1/logs/export\?[^"]+format=csv[^"]*)"`).FindStringSubmatch(log.body)
	if m == nil {
		t.Fatalf("no CSV export link: %s", log.body)
	}
	csv := root.get(strings.ReplaceAll(m[1], "&amp;", "&"))
	if csv.status != 200 || !strings.Contains(csv.body, "UPDATE_USER") || strings.Contains(csv.body, "LOGIN,") {
		t.Fatalf("export through the cookie: %d %s", csv.status, csv.body)
	}
	// Events of actions taken on the pages are the acting user's.
	if !strings.Contains(csv.body, rootID) {
		t.Fatalf("the admin's change is not recorded as the admin's: %s", csv.body)
	}
	if p := root.get("/admin/log?since=yesterday"); p.status != 400 {
		t.Fatalf("bad since: %d", p.status)
	}
	// With no viewing left today, the watch page says so instead of
	// playing (and grants nothing).
	form.Set("quota", "2GiB")
	form.Set("daily_egress", "0")
	if p := root.post("/admin/users/"+annID, form); !strings.Contains(p.body, "The account is saved.") {
		t.Fatalf("egress limit 0: %d %s", p.status, p.body)
	}
	used := ann.get("/watch/" + cats)
	if used.status != 200 || !strings.Contains(used.body, "Today's viewing allowance is used up") || strings.Contains(used.body, "<video") {
		t.Fatalf("used-up allowance: %d %s", used.status, used.body)
	}
	// The session's token is carried to the services, never logged.
	if tok := ann.cookie("/", "reel_access"); tok == "" || strings.Contains(r.logs.String(), tok) {
		t.Fatal("the access token is in the log (or there is no session)")
	}
}

// The account page: sessions listed with this one marked, the others
// signed out, the password changed (which signs out everything else and
// keeps this browser signed in).
func TestAccount(t *testing.T) {
	deployments(t, nil, func(t *testing.T, r *reel) {
		r.account("ann@example.com", "ann")
		phone, laptop := r.browser(), r.browser()
		phone.login("ann@example.com", "correct horse")
		laptop.login("ann@example.com", "correct horse")
		p := laptop.get("/account")
		if n := strings.Count(p.body, "Signed in <time"); n != 3 { // the API's login and two browsers
			t.Fatalf("sessions: %d\n%s", n, p.body)
		}
		if strings.Count(p.body, "This browser") != 1 {
			t.Fatalf("this session not marked once:\n%s", p.body)
		}
		ids := regexp.MustCompile(`action="/account/sessions/([^/]+)/revoke"`).FindAllStringSubmatch(p.body, -1)
		if len(ids) != 2 {
			t.Fatalf("revocable sessions: %v", ids)
		}
		if p := laptop.post("/account/sessions/"+ids[0][1]+"/revoke", nil); !strings.Contains(p.body, "That session is signed out.") || strings.Count(p.body, "Signed in <time") != 2 {
			t.Fatalf("revoke one: %d %s", p.status, p.body)
		}
		if p := laptop.post("/account/sessions/"+ids[0][1]+"/revoke", nil); p.status != 404 || !strings.Contains(p.body, "No such session.") {
			t.Fatalf("revoke it again: %d", p.status)
		}
		if p := laptop.post("/account/profile", url.Values{"username": {""}}); p.status != 422 || !strings.Contains(p.body, "The name must have 1 to 64 characters.") {
			t.Fatalf("empty name: %d", p.status)
		}
		// The pages remember the signed-in account for a few seconds, but
		// not past a change made on them.
		if p := laptop.post("/account/profile", url.Values{"username": {"Annie"}}); !strings.Contains(p.body, `<span class="who">Annie</span>`) {
			t.Fatalf("new name: %d %s", p.status, p.body)
		}
		if p := laptop.post("/auth/sessions/revoke-others", nil); !strings.Contains(p.body, "Your other sessions are signed out.") || strings.Count(p.body, "Signed in <time") != 1 {
			t.Fatalf("revoke others: %d %s", p.status, p.body)
		}
		u, _ := url.Parse(r.base + "/")
		phone.c.Jar.SetCookies(u, []*http.Cookie{{Name: "reel_access", Value: "", Path: "/", MaxAge: -1}})
		if p := phone.get("/"); !strings.Contains(p.url, "/login") {
			t.Fatalf("the phone's session survived: %s", p.url)
		}
		if p := laptop.post("/account/password", url.Values{"current_password": {"wrong horse"}, "password": {"new horse!"}, "confirm": {"new horse!"}}); p.status != 403 || !strings.Contains(p.body, "The current password is wrong.") {
			t.Fatalf("wrong current password: %d", p.status)
		}
		if p := laptop.post("/account/password", url.Values{"current_password": {"correct horse"}, "password": {"new horse!"}, "confirm": {"new horse!"}}); !strings.Contains(p.body, "Your password is changed.") {
			t.Fatalf("password change: %d %s", p.status, p.url)
		}
		if st, _ := r.api("POST", "/api/v1/auth/login", "", map[string]string{"email": "ann@example.com", "password": "new horse!"}); st != 200 {
			t.Fatalf("login with the new password: %d", st)
		}
	})
}

// Without JavaScript, the upload page's plain form uploads one video: the
// API's multipart upload, answered with a page.
func TestPlainFormUpload(t *testing.T) {
	deployments(t, nil, func(t *testing.T, r *reel) {
		r.account("ann@example.com", "ann")
		b := r.browser()
		b.login("ann@example.com", "correct horse")
		if p := b.get("/upload"); !strings.Contains(p.body, `action="/upload" enctype="multipart/form-data"`) {
			t.Fatalf("no plain form: %s", p.body)
		}
		form := func(title, name string, file []byte, hdr ...string) page {
			t.Helper()
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			_ = mw.WriteField("title", title)
			fw, _ := mw.CreateFormFile("video", name)
			_, _ = fw.Write(file)
			_ = mw.Close()
			req, _ := http.NewRequest("POST", r.base+"/upload", &buf)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			req.Header.Set("Origin", r.base)
			for i := 0; i+1 < len(hdr); i += 2 {
				req.Header.Set(hdr[i], hdr[i+1])
			}
			return b.do(req)
		}
		if p := form("stolen", "x.mp4", clip(t), "Origin", "http://evil.example"); p.status != 403 {
			t.Fatalf("cross-site upload: %d", p.status)
		}
		if p := form("notes", "notes.txt", []byte("not a video at all, just some text")); p.status != 415 || !strings.Contains(p.body, "The file is not a video reel accepts") {
			t.Fatalf("not a video: %d %s", p.status, p.body)
		}
		if p := form("", "x.mp4", clip(t)); p.status != 422 || !strings.Contains(p.body, "The title is required.") {
			t.Fatalf("no title: %d %s", p.status, p.body)
		}
		p := form("Plain upload", "x.mp4", clip(t))
		if p.status != 200 || !strings.HasSuffix(p.url, "/mine?done=uploaded") || !strings.Contains(p.body, "Plain upload") || !strings.Contains(p.body, "The video is uploaded.") {
			t.Fatalf("plain upload: %d %s\n%s", p.status, p.url, p.body)
		}
	})
}
