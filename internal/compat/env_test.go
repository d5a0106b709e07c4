package compat_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/compat"
	"github.com/reel-video/reel/internal/logs"
	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
	"github.com/reel-video/reel/internal/users"
)

// serviceKey signs the service credentials of the tests.
const serviceKey = "0123456789abcdef0123456789abcdef-compat-test"

// origin is the browser origin that CORS allows in the tests.
const origin = "https://app.example.com"

// env is the users and logs services on one real database, with their v1
// routes and their compatibility parts behind a real socket, as the users
// and logs modules mount them.
type env struct {
	url   string
	users *users.Service
	logs  *logs.Service
	keys  *authn.ServiceKeys
}

// engines runs fn with a fresh env on SQLite and on PostgreSQL.
func engines(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		fn(t, newEnv(t, url))
	})
}

func newEnv(t *testing.T, url string) *env {
	t.Helper()
	ctx := context.Background()
	db := sqldbtest.OpenURL(t, url, users.Migrations(), users.MigrationTable)
	must(t, sqldb.Migrate(ctx, db, logs.Migrations(), logs.MigrationTable))
	must(t, sqldb.Migrate(ctx, db, outbox.Migrations("users_outbox", db.Dialect), outbox.VersionTable("users_outbox")))
	ob := outbox.New(db, "users_outbox", outbox.WithPollInterval(20*time.Millisecond), outbox.WithLogger(obs.Discard()))
	cfg := users.Config{AccessTTL: 15 * time.Minute, RefreshTTL: 24 * time.Hour, LoginMaxPerAccount: 3, LoginMaxPerIP: 1000, LoginWindow: 15 * time.Minute}
	usvc, err := users.New(ctx, db, ob, users.NewHasher(2), cfg, obs.Discard())
	must(t, err)
	lsvc := logs.New(db, obs.Discard())
	// The relay delivers the users service's events to the logs service,
	// as in the all-in-one process.
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = ob.Run(rctx, lsvc) }()
	t.Cleanup(func() { stop(); <-done })

	keys, err := authn.NewServiceKeys(serviceKey, "logs")
	must(t, err)
	verifier := authn.NewVerifier(usvc)
	mux := http.NewServeMux()
	users.NewHandler(usvc, verifier).Routes(mux)
	logs.NewHandler(lsvc, verifier).Routes(mux)
	compat.NewUsers(usvc, verifier).Routes(mux)
	compat.NewLogs(lsvc, verifier, keys).Routes(mux)
	srv := httptest.NewServer(httpx.Wrap(httpx.CORS([]string{origin}, mux), httpx.MiddlewareConfig{Logger: obs.Discard()}))
	t.Cleanup(srv.Close)
	return &env{url: srv.URL, users: usvc, logs: lsvc, keys: keys}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// reply is an HTTP answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic value, failing on anything but JSON.
func (r reply) json(t testing.TB) map[string]any {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("content type %q, body %s", ct, r.body)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return m
}

// req is one request of a test.
type req struct {
	method, path, token string
	body                any // marshalled as JSON unless []byte or nil
	header              map[string]string
}

func call(t testing.TB, base string, q req) reply {
	t.Helper()
	var rd io.Reader
	switch b := q.body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		must(t, err)
		rd = bytes.NewReader(j)
	}
	hr, err := http.NewRequestWithContext(context.Background(), q.method, base+q.path, rd)
	must(t, err)
	if rd != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if q.token != "" {
		hr.Header.Set("Authorization", "Bearer "+q.token)
	}
	for k, v := range q.header {
		hr.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(hr)
	must(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	must(t, err)
	return reply{status: res.StatusCode, header: res.Header, body: b}
}

// expect checks the status and, when want is not nil, that the JSON body
// equals want exactly.
func expect(t testing.TB, name string, r reply, status int, want map[string]any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d: %s", name, r.status, status, r.body)
	}
	if want == nil {
		return
	}
	if got := r.json(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: body %s, want %v", name, r.body, want)
	}
}

// msg is the original's {message} body.
func msg(m string) map[string]any { return map[string]any{"message": m} }

// msgErr is the original's {message, error} body.
func msgErr(m, e string) map[string]any { return map[string]any{"message": m, "error": e} }

// keysOf returns the sorted keys of a JSON object.
func keysOf(v any) string {
	m, _ := v.(map[string]any)
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sortStrings(ks)
	return strings.Join(ks, ",")
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// claims decodes a JWT's payload without verifying it, as the original
// client does.
func claims(t testing.TB, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	must(t, err)
	var m map[string]any
	must(t, json.Unmarshal(b, &m))
	return m
}

// register makes an account through the service and returns its id.
func (e *env) register(t testing.TB, email string, admin bool) string {
	t.Helper()
	u, err := e.users.Register(context.Background(), users.RegisterInput{Email: email, Password: "password-123", Username: "u", Admin: admin})
	must(t, err)
	return u.ID
}

// login logs in through the compatibility route and returns the token.
func (e *env) login(t testing.TB, email string) string {
	t.Helper()
	r := call(t, e.url, req{method: "POST", path: "/api/users/login", body: map[string]string{"email": email, "password": "password-123"}})
	expect(t, "login "+email, r, 200, nil)
	tok, _ := r.json(t)["token"].(string)
	if tok == "" {
		t.Fatalf("login %s: no token: %s", email, r.body)
	}
	return tok
}

// eventually retries check until it passes or 10 seconds have gone.
func eventually(t testing.TB, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
