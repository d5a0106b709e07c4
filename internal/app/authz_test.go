package app_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/app/apptest"
	"github.com/reel-video/reel/internal/compat"
	"github.com/reel-video/reel/internal/logs"
	"github.com/reel-video/reel/internal/media/mediatest"
	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
	"github.com/reel-video/reel/internal/storage"
	"github.com/reel-video/reel/internal/usage"
	"github.com/reel-video/reel/internal/users"
	"github.com/reel-video/reel/internal/videos"
)

// who is a principal of the authorization matrix. The resources named in
// a route's path belong to user; other owns resources of its own but not
// those; disabled was disabled and demoted demoted from admin by the
// admin after their tokens were issued; expired holds a token signed with
// the real key whose exp has passed.
type who int

const (
	anon who = iota
	user
	other
	admin
	disabled
	expired
	demoted
	nWho
)

var whoNames = [nWho]string{"anonymous", "user", "other", "admin", "disabled", "expired", "demoted"}

// TestAuthorizationMatrix calls every route of the OpenAPI documents as
// every principal, over a real socket against the all-in-one, and checks
// each answer's status against authzTable. A documented route without a
// row, or a row without a documented route, fails the test: a new route
// must say who may call it.
func TestAuthorizationMatrix(t *testing.T) {
	mediatest.Tools(t)
	clip, err := os.ReadFile(mediatest.Video(t, "", 1, 64, 48))
	if err != nil {
		t.Fatal(err)
	}
	sqldbtest.Engines(t, func(t *testing.T, dbURL string) {
		w := newWorld(t, dbURL, clip)
		routes := documentedRoutes(t, w)
		for _, r := range routes {
			if _, ok := authzTable[r]; !ok {
				t.Errorf("route %q has no row in authzTable: say who may call it", r)
			}
		}
		for r := range authzTable {
			if !slices.Contains(routes, r) {
				t.Errorf("authzTable row %q is no documented route", r)
			}
		}
		// Rows that change the principals' other resources (delete-all)
		// run last, so that every other row sees the world as built.
		slices.SortStableFunc(routes, func(a, b string) int {
			la, lb := authzTable[a].last, authzTable[b].last
			switch {
			case la == lb:
				return 0
			case lb:
				return -1
			default:
				return 1
			}
		})
		for _, r := range routes {
			row, ok := authzTable[r]
			if !ok {
				continue
			}
			method, path, _ := strings.Cut(r, " ")
			for p := range nWho {
				got := w.call(t, method, path, row, p)
				if got != row.want[p] {
					t.Errorf("%-55s as %-9s: %d, want %d", r, whoNames[p], got, row.want[p])
				}
			}
		}
	})
}

// documentedRoutes lists "METHOD path" of every operation of the process's
// served OpenAPI document and of every service's fragment, so that a
// fragment the app forgot to serve is still in the matrix.
func documentedRoutes(t *testing.T, w *world) []string {
	t.Helper()
	res, err := w.client.Get(w.base + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	served, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("openapi.json: %d %v", res.StatusCode, err)
	}
	set := map[string]bool{}
	for _, doc := range [][]byte{served,
		users.OpenAPI, logs.OpenAPI, storage.OpenAPI, usage.OpenAPI, videos.OpenAPI,
		compat.UsersOpenAPI, compat.LogsOpenAPI, compat.StorageOpenAPI, compat.UsageOpenAPI, compat.VideosOpenAPI} {
		var d struct {
			Paths map[string]map[string]json.RawMessage `json:"paths"`
		}
		if err := json.Unmarshal(doc, &d); err != nil {
			t.Fatal(err)
		}
		for path, ops := range d.Paths {
			for m := range ops {
				switch m {
				case "get", "put", "post", "delete", "options", "head", "patch", "trace":
					set[strings.ToUpper(m)+" "+path] = true
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// row is one route's expected statuses, by principal, and how to make its
// request: params fills the path's {names}, body gives the body and its
// headers. Both run before each call, so that a call that destroys what it
// names gets a fresh one.
type row struct {
	want   [nWho]int
	params func(w *world, p who) map[string]string
	body   func(w *world, p who) ([]byte, map[string]string)
	last   bool
}

func want(s ...int) [nWho]int {
	if len(s) != int(nWho) {
		panic(fmt.Sprintf("want: %d statuses for %d principals", len(s), nWho))
	}
	return [nWho]int(s)
}

// world is the all-in-one and what the principals hold in it.
type world struct {
	t      *testing.T
	base   string
	client *http.Client
	clip   []byte
	admin  string // the admin's token, for setting things up
	tokens [nWho]string
	email  [nWho]string
	ids    [nWho]string
	video  [nWho]string // a video of each principal that has one
	upload string       // a tus upload of user
	media  string       // a signed media path of user's video
	seq    atomic.Int64
}

const (
	matrixAdminEmail = "root@example.com"
	matrixPassword   = "matrix-password-1"
)

func newWorld(t *testing.T, dbURL string, clip []byte) *world {
	t.Helper()
	a := apptest.New(t, map[string]string{
		"REEL_DATABASE_URL": dbURL, "REEL_STREAMING": "off",
		"REEL_ADMIN_EMAIL": matrixAdminEmail, "REEL_ADMIN_PASSWORD": matrixPassword,
		"REEL_SERVICE_KEY": strings.Repeat("k", 40),
	}, obs.Discard())
	base, _ := apptest.Start(t, a)
	w := &world{t: t, base: base, clip: clip, client: &http.Client{
		Timeout:       time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	w.email[admin] = matrixAdminEmail
	w.tokens[admin], w.ids[admin] = w.login(matrixAdminEmail)
	w.admin = w.tokens[admin]
	for _, p := range []who{user, other, disabled, demoted} {
		w.email[p] = whoNames[p] + "@example.com"
		w.ids[p] = w.register(w.email[p])
	}
	w.patchUser(w.ids[demoted], `{"role":"admin"}`)
	for _, p := range []who{user, other, disabled, demoted} {
		w.tokens[p], _ = w.login(w.email[p])
	}
	w.patchUser(w.ids[disabled], `{"disabled":true}`)
	w.patchUser(w.ids[demoted], `{"role":"user"}`)
	w.tokens[expired] = expiredToken(t, dbURL, w.ids[user])

	w.video[user] = w.newVideo(user)
	w.video[other] = w.newVideo(other)
	w.upload = w.newUpload()
	var grant struct {
		URL string `json:"url"`
	}
	w.must(w.do(http.MethodPost, "/api/v1/videos/"+w.video[user]+"/playback", w.tokens[user], nil, nil), 200, &grant)
	w.media = strings.TrimPrefix(grant.URL, w.base)
	if !strings.HasPrefix(w.media, "/media/") {
		t.Fatalf("playback url %q", grant.URL)
	}
	// Registered after apptest.Start's, so it runs before the app stops.
	t.Cleanup(w.quiesce)
	return w
}

// quiesce waits for the poster jobs of the uploads to end: shutdown waits
// for a running one, which runs at background priority and, on a busy
// machine, may take longer than the test's stop allows.
func (w *world) quiesce() {
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		busy := false
		for _, state := range []string{"available", "running", "retryable"} {
			var page struct {
				Items []json.RawMessage `json:"items"`
			}
			r := w.do(http.MethodGet, "/api/v1/jobs?state="+state, w.admin, nil, nil)
			if r.status != http.StatusOK || json.Unmarshal(r.body, &page) != nil {
				w.t.Logf("jobs: %d %s", r.status, r.body)
				return
			}
			busy = busy || len(page.Items) > 0
		}
		if !busy {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	w.t.Log("poster jobs still unfinished after 3 minutes")
}

// call makes row's request to path as p and returns the status.
func (w *world) call(t *testing.T, method, path string, r row, p who) int {
	t.Helper()
	if r.params != nil {
		for k, v := range r.params(w, p) {
			path = strings.ReplaceAll(path, "{"+k+"}", v)
		}
	}
	if strings.Contains(path, "{") {
		t.Fatalf("%s %s: path parameters left unfilled", method, path)
	}
	var body []byte
	var header map[string]string
	if r.body != nil {
		body, header = r.body(w, p)
	}
	res := w.do(method, path, w.tokens[p], body, header)
	return res.status
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (w *world) do(method, path, token string, body []byte, header map[string]string) reply {
	w.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, w.base+path, bytes.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := w.client.Do(req)
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return reply{res.StatusCode, res.Header, b}
}

// must checks a setup call's status and decodes its body into into.
func (w *world) must(r reply, status int, into any) {
	w.t.Helper()
	if r.status != status {
		w.t.Fatalf("setup: status %d, want %d: %s", r.status, status, r.body)
	}
	if into != nil {
		if err := json.Unmarshal(r.body, into); err != nil {
			w.t.Fatalf("setup: %v: %s", err, r.body)
		}
	}
}

func jsonBody(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// unique is a new email each call, for the routes that make accounts.
func (w *world) unique() string { return fmt.Sprintf("new%d@example.com", w.seq.Add(1)) }

func (w *world) register(email string) string {
	w.t.Helper()
	var out struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	w.must(w.do(http.MethodPost, "/api/v1/auth/register", "",
		jsonBody(map[string]string{"email": email, "password": matrixPassword, "username": strings.Split(email, "@")[0]}), nil), 201, &out)
	return out.User.ID
}

// tokens is a login's answer.
type tokens struct {
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
	User    struct {
		ID string `json:"id"`
	} `json:"user"`
}

func (w *world) loginTokens(email string) tokens {
	w.t.Helper()
	var out tokens
	w.must(w.do(http.MethodPost, "/api/v1/auth/login", "", jsonBody(map[string]string{"email": email, "password": matrixPassword}), nil), 200, &out)
	return out
}

func (w *world) login(email string) (token, id string) {
	w.t.Helper()
	tk := w.loginTokens(email)
	return tk.Access, tk.User.ID
}

// session is a fresh login of p (of user for those who cannot log in).
func (w *world) session(p who) tokens {
	w.t.Helper()
	switch p {
	case user, other, admin, demoted:
		return w.loginTokens(w.email[p])
	}
	return w.loginTokens(w.email[user])
}

func (w *world) patchUser(id, body string) {
	w.t.Helper()
	w.must(w.do(http.MethodPatch, "/api/v1/users/"+id, w.admin, []byte(body), nil), 200, nil)
}

// multipart is a video upload body with the clip and a title.
func (w *world) multipart() ([]byte, map[string]string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	f, _ := mw.CreateFormFile("video", "clip.mp4")
	_, _ = f.Write(w.clip)
	_ = mw.WriteField("title", "matrix clip")
	_ = mw.Close()
	return b.Bytes(), map[string]string{"Content-Type": mw.FormDataContentType()}
}

// newVideo uploads a video as p and returns its id.
func (w *world) newVideo(p who) string {
	w.t.Helper()
	body, h := w.multipart()
	var out struct {
		Video struct {
			ID string `json:"id"`
		} `json:"video"`
	}
	w.must(w.do(http.MethodPost, "/api/v1/videos", w.tokens[p], body, h), 201, &out)
	return out.Video.ID
}

// trashedVideo is a new video of user, in the trash.
func (w *world) trashedVideo() string {
	w.t.Helper()
	id := w.newVideo(user)
	w.must(w.do(http.MethodDelete, "/api/v1/videos/"+id, w.tokens[user], nil, nil), 204, nil)
	return id
}

// tusHeaders are the headers of a tus creation request.
func tusHeaders(length int) map[string]string {
	meta := "title " + base64.StdEncoding.EncodeToString([]byte("matrix")) + ",filename " + base64.StdEncoding.EncodeToString([]byte("clip.mp4"))
	return map[string]string{"Tus-Resumable": "1.0.0", "Upload-Length": fmt.Sprint(length), "Upload-Metadata": meta}
}

// newUpload creates a tus upload of user and returns its id.
func (w *world) newUpload() string {
	w.t.Helper()
	r := w.do(http.MethodPost, videos.UploadsPath, w.tokens[user], nil, tusHeaders(len(w.clip)))
	w.must(r, 201, nil)
	loc := r.header.Get("Location")
	i := strings.LastIndex(loc, "/")
	if i < 0 || loc[i+1:] == "" {
		w.t.Fatalf("tus Location %q", loc)
	}
	return loc[i+1:]
}

// expiredToken signs, with the users service's own key read from its
// database, a token for userID that expired a minute ago.
func expiredToken(t *testing.T, dbURL, userID string) string {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, dbURL, sqldb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var kid, seed string
	err = db.R.QueryRowContext(ctx, `SELECT kid, private_key FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC`).Scan(&kid, &seed)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(seed)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, authn.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject: userID, Issuer: authn.Issuer, ID: uuid.NewString(),
			IssuedAt: jwt.NewNumericDate(now.Add(-20 * time.Minute)), ExpiresAt: jwt.NewNumericDate(now.Add(-time.Minute)),
		},
		Role: authn.RoleUser, ID: userID,
	})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(ed25519.NewKeyFromSeed(raw))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
