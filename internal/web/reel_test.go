package web_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/app/apptest"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

// reel is a real all-in-one reel, started in-process on a fresh data
// directory and a loopback port, as `reel serve` runs it.
type reel struct {
	t    testing.TB
	base string
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startReel starts reel with env on top of a fresh data directory.
func startReel(t testing.TB, env map[string]string) *reel {
	t.Helper()
	logs := &syncBuffer{}
	return &reel{t: t, base: runReel(t, env, nil, logs), logs: logs}
}

// startSplit starts reel split in two processes' worth of apps, as in
// production but for the number of processes: every service in one
// (-target=users,logs,storage,usage,videos, no web app) on a fresh
// PostgreSQL database, as operators split reel, and the gateway, which
// serves the pages on them over HTTP, in front. env goes to both. Without
// PostgreSQL it skips, or fails in CI, as sqldbtest does.
func startSplit(t testing.TB, env map[string]string) *reel {
	t.Helper()
	logs := &syncBuffer{}
	common := map[string]string{"REEL_SERVICE_KEY": "a service key of at least 32 characters", "REEL_TRUSTED_PROXIES": "127.0.0.1/32"}
	services := runReel(t, env, merge(common, map[string]string{
		"REEL_TARGET":       "users,logs,storage,usage,videos",
		"REEL_DATABASE_URL": sqldbtest.PostgresURL(t),
	}), logs)
	gw := map[string]string{"REEL_TARGET": "gateway"}
	for _, svc := range []string{"USERS", "LOGS", "STORAGE", "USAGE", "VIDEOS"} {
		gw["REEL_"+svc+"_URL"] = services
	}
	return &reel{t: t, base: runReel(t, env, merge(common, gw), logs), logs: logs}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// deployments runs fn on an all-in-one reel on SQLite and on a split one
// on PostgreSQL (the pages served by the gateway on the services over
// HTTP): every browser flow meets both engines.
func deployments(t *testing.T, env map[string]string, fn func(t *testing.T, r *reel)) {
	t.Run("all", func(t *testing.T) { fn(t, startReel(t, env)) })
	t.Run("split", func(t *testing.T) { fn(t, startSplit(t, env)) })
}

// runReel runs one reel process's app with env and then fixed on top of a
// fresh data directory, and returns its base URL.
func runReel(t testing.TB, env, fixed map[string]string, logs *syncBuffer) string {
	t.Helper()
	vars := merge(map[string]string{"REEL_HASH_CONCURRENCY": "2"}, env, fixed)
	a := apptest.New(t, vars, slog.New(slog.NewJSONHandler(logs, nil)))
	base, _ := apptest.Start(t, a)
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("REEL_TEST_VERBOSE") != "" {
			t.Logf("reel's log:\n%s", logs.String())
		}
	})
	return base
}

var setupLink = regexp.MustCompile(`"url":"(http://[^"]+/setup/[A-Za-z0-9_-]+)"`)

// setupURL waits for the one-time setup link in reel's log.
func (r *reel) setupURL() string {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := setupLink.FindStringSubmatch(r.logs.String()); m != nil {
			return m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("no setup link in the log:\n%s", r.logs.String())
	return ""
}

// browser is an HTTP client with a cookie jar that sends what a browser
// sends on a same-origin form post (Origin, Sec-Fetch-Site).
type browser struct {
	t      testing.TB
	r      *reel
	c      *http.Client
	follow bool
}

func (r *reel) browser() *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: r.t, r: r, follow: true}
	b.c = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		if !b.follow {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

type page struct {
	status int
	url    string
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, url: res.Request.URL.String(), header: res.Header, body: string(body)}
}

func (b *browser) get(path string, hdr ...string) page {
	b.t.Helper()
	req, err := http.NewRequest("GET", b.r.base+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return b.do(req)
}

// post sends a form as a page of this site does; hdr overrides headers
// (an empty value deletes one).
func (b *browser) post(path string, form url.Values, hdr ...string) page {
	b.t.Helper()
	req, err := http.NewRequest("POST", b.r.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.r.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	return b.do(req)
}

// cookie returns the value the jar would send to path.
func (b *browser) cookie(path, name string) string {
	u, _ := url.Parse(b.r.base + path)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// api calls the JSON API with a bearer token.
func (r *reel) api(method, path, token string, body any) (int, map[string]any) {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		buf, _ := json.Marshal(body)
		rd = bytes.NewReader(buf)
	}
	req, _ := http.NewRequest(method, r.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

// account registers a user through the API and returns an access token.
func (r *reel) account(email, name string) (token, id string) {
	r.t.Helper()
	if st, body := r.api("POST", "/api/v1/auth/register", "", map[string]string{"email": email, "password": "correct horse", "username": name}); st != 201 {
		r.t.Fatalf("register %s: %d %v", email, st, body)
	}
	st, body := r.api("POST", "/api/v1/auth/login", "", map[string]string{"email": email, "password": "correct horse"})
	if st != 200 {
		r.t.Fatalf("login %s: %d %v", email, st, body)
	}
	return body["access_token"].(string), body["user"].(map[string]any)["id"].(string)
}

// upload sends a video through the multipart API and returns its id.
func (r *reel) upload(token, title string, file []byte) string {
	r.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("title", title)
	fw, _ := mw.CreateFormFile("video", "clip.mp4")
	_, _ = fw.Write(file)
	_ = mw.Close()
	req, _ := http.NewRequest("POST", r.base+"/api/v1/videos", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Video struct{ ID string } `json:"video"`
	}
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != 201 || json.Unmarshal(raw, &out) != nil {
		r.t.Fatalf("upload: %d %s", res.StatusCode, raw)
	}
	return out.Video.ID
}

// login signs the browser in through the login form.
func (b *browser) login(email, password string) {
	b.t.Helper()
	p := b.post("/login", url.Values{"email": {email}, "password": {password}, "next": {"/"}})
	if p.status != 200 || !strings.Contains(p.body, "Log out") {
		b.t.Fatalf("login %s: %d %s", email, p.status, p.body)
	}
}
