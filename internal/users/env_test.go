package users_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
	"github.com/reel-video/reel/internal/users"
)

// env is a users service on a real database behind a real HTTP server.
type env struct {
	t   *testing.T
	db  *sqldb.DB
	ob  *outbox.Outbox
	svc *users.Service
	srv *httptest.Server
	now time.Time
	mu  sync.Mutex
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

func newEnv(t *testing.T, db *sqldb.DB) *env {
	t.Helper()
	ctx := context.Background()
	if err := sqldb.Migrate(ctx, db, outbox.Migrations("users_outbox", db.Dialect), outbox.VersionTable("users_outbox")); err != nil {
		t.Fatal(err)
	}
	cfg := users.Config{AccessTTL: 15 * time.Minute, RefreshTTL: 30 * 24 * time.Hour, LoginMaxPerAccount: 3, LoginMaxPerIP: 6, LoginWindow: 15 * time.Minute}
	ob := outbox.New(db, "users_outbox")
	svc, err := users.New(ctx, db, ob, users.NewHasher(2), cfg, obs.Discard())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, ob: ob, svc: svc, now: time.Now()}
	svc.SetClock(e.clock)
	mux := http.NewServeMux()
	v := authn.NewVerifier(svc)
	v.SetStanding(svc, nil) // as internal/app wires it, less the watch
	svc.SetStandingChanged(v.Forget)
	users.NewHandler(svc, v).Routes(mux)
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	e.srv = httptest.NewServer(httpx.Wrap(mux, httpx.MiddlewareConfig{Logger: obs.Discard(), TrustedProxies: trusted}))
	t.Cleanup(e.srv.Close)
	return e
}

func withEnv(t *testing.T, fn func(t *testing.T, e *env)) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		fn(t, newEnv(t, db))
	}, users.Migrations(), users.MigrationTable)
}

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// do sends a request; body may be a string (sent raw) or a value (JSON).
func (e *env) do(method, path, token string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, _ := json.Marshal(b)
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (r resp) code() string { s, _ := r.body["code"].(string); return s }

func (r resp) str(key string) string { s, _ := r.body[key].(string); return s }

func expect(t *testing.T, r resp, status int, code string) {
	t.Helper()
	if r.status != status || (code != "" && r.code() != code) {
		t.Fatalf("got %d %s, want %d %s: %s", r.status, r.code(), status, code, r.raw)
	}
	if status >= 400 {
		if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("error content type %q", ct)
		}
		if r.str("request_id") == "" || r.header.Get("X-Request-ID") == "" {
			t.Fatalf("error without request id: %s", r.raw)
		}
	}
}

func (e *env) register(email, password, username string) resp {
	return e.do("POST", "/api/v1/auth/register", "", map[string]string{"email": email, "password": password, "username": username})
}

func (e *env) login(email, password string, hdr ...string) resp {
	return e.do("POST", "/api/v1/auth/login", "", map[string]string{"email": email, "password": password}, hdr...)
}

// account registers and logs in, returning the login answer.
func (e *env) account(email string) resp {
	e.t.Helper()
	expect(e.t, e.register(email, "correct horse", "someone"), 201, "")
	r := e.login(email, "correct horse")
	expect(e.t, r, 200, "")
	return r
}

func (e *env) makeAdmin(email string) string {
	e.t.Helper()
	if _, err := e.db.W.Exec(`UPDATE users SET role = 'admin' WHERE email = $1`, email); err != nil {
		e.t.Fatal(err)
	}
	r := e.login(email, "correct horse")
	expect(e.t, r, 200, "")
	return r.str("access_token")
}

func (e *env) events(action, outcome string) []outbox.Event {
	e.t.Helper()
	e.ob.Wait() // events of refusals are written after the answer
	rows, err := e.db.R.Query(`SELECT payload FROM users_outbox ORDER BY seq`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []outbox.Event
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			e.t.Fatal(err)
		}
		var ev outbox.Event
		if err := json.Unmarshal([]byte(p), &ev); err != nil {
			e.t.Fatal(err)
		}
		if ev.Action == action && (outcome == "" || ev.Outcome == outcome) {
			out = append(out, ev)
		}
	}
	return out
}
