package users_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
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
	v.SetStanding(svc) // as internal/app wires it
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

func TestRegister(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		r := e.register("Ann@Example.com", "correct horse", "ann")
		expect(t, r, 201, "")
		u := r.body["user"].(map[string]any)
		if u["email"] != "ann@example.com" || u["role"] != "user" || u["disabled"] != false || u["username"] != "ann" {
			t.Fatalf("user %v", u)
		}
		for _, k := range []string{"id", "created_at"} {
			if u[k] == "" || u[k] == nil {
				t.Fatalf("missing %s in %v", k, u)
			}
		}
		if _, ok := u["password_hash"]; ok {
			t.Fatal("hash leaked")
		}
		// Emails are case-insensitive and unique.
		expect(t, e.register("ANN@example.COM", "correct horse", "ann2"), 409, "email_taken")
		if n := len(e.events("REGISTER", "success")); n != 1 {
			t.Fatalf("%d REGISTER events", n)
		}

		bad := []struct {
			name string
			body any
			st   int
			code string
		}{
			{"bad email", map[string]string{"email": "nope", "password": "correct horse", "username": "x"}, 422, "validation_failed"},
			{"short password", map[string]string{"email": "b@example.com", "password": "short", "username": "x"}, 422, "validation_failed"},
			{"empty username", map[string]string{"email": "b@example.com", "password": "correct horse", "username": "  "}, 422, "validation_failed"},
			{"long username", map[string]string{"email": "b@example.com", "password": "correct horse", "username": strings.Repeat("x", 65)}, 422, "validation_failed"},
			{"malformed json", `{"email": "b@example.com",`, 400, "malformed_json"},
			{"wrong type", `{"email": 12, "password": "correct horse", "username": "x"}`, 400, "invalid_field"},
			{"unknown field", `{"email": "b@example.com", "password": "correct horse", "username": "x", "role": "admin"}`, 400, "invalid_field"},
			{"trailing data", `{"email": "b@example.com", "password": "correct horse", "username": "x"} {}`, 400, "malformed_json"},
			{"empty body", ``, 400, "malformed_json"},
			{"array", `[]`, 400, "malformed_json"},
			{"oversized", `{"email": "` + strings.Repeat("a", 70<<10) + `"}`, 413, "body_too_large"},
		}
		for _, c := range bad {
			t.Run(c.name, func(t *testing.T) {
				expect(t, e.do("POST", "/api/v1/auth/register", "", c.body), c.st, c.code)
			})
		}
		r = e.do("POST", "/api/v1/auth/register", "", map[string]string{"email": "nope", "password": "x", "username": ""})
		errsMap, _ := r.body["errors"].(map[string]any)
		if len(errsMap) != 3 {
			t.Fatalf("validation errors should name each field: %s", r.raw)
		}
		// Wrong content type.
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/auth/register", strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "text/plain")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 415 {
			t.Fatalf("text/plain body: %d", res.StatusCode)
		}
	})
}

func TestLoginAndMe(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		r := e.account("bob@example.com")
		if r.str("token_type") != "Bearer" || r.body["expires_in"].(float64) != 900 || r.str("refresh_token") == "" {
			t.Fatalf("login answer %s", r.raw)
		}
		access := r.str("access_token")
		// The token's claims follow API.md, plus id/email for old clients.
		parts := strings.Split(access, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var claims map[string]any
		_ = json.Unmarshal(payload, &claims)
		for _, k := range []string{"sub", "role", "iat", "exp", "jti", "iss", "id", "email"} {
			if claims[k] == nil {
				t.Fatalf("claim %s missing: %v", k, claims)
			}
		}
		header, _ := base64.RawURLEncoding.DecodeString(parts[0])
		if !strings.Contains(string(header), `"alg":"EdDSA"`) || !strings.Contains(string(header), `"kid"`) {
			t.Fatalf("header %s", header)
		}
		me := e.do("GET", "/api/v1/users/me", access, nil)
		expect(t, me, 200, "")
		if me.body["user"].(map[string]any)["email"] != "bob@example.com" {
			t.Fatal(me.raw)
		}
		// Email case does not matter at login either.
		expect(t, e.login("BOB@example.com", "correct horse"), 200, "")
		// Unknown email and wrong password get the same answer.
		a := e.login("nobody@example.com", "correct horse")
		b := e.login("bob@example.com", "wrong password")
		expect(t, a, 401, "invalid_credentials")
		expect(t, b, 401, "invalid_credentials")
		if a.str("detail") != b.str("detail") {
			t.Fatal("answers differ")
		}
		fails := e.events("LOGIN", "failure")
		if len(fails) != 2 {
			t.Fatalf("%d failed LOGIN events", len(fails))
		}
		for _, ev := range fails {
			raw, _ := json.Marshal(ev)
			if strings.Contains(string(raw), "wrong password") || ev.Metadata["email"] == nil || ev.IP == "" || ev.RequestID == "" {
				t.Fatalf("failed login event %s", raw)
			}
		}
		if len(e.events("LOGIN", "success")) != 2 {
			t.Fatal("successful logins not recorded")
		}
		expect(t, e.do("POST", "/api/v1/auth/login", "", `{"email":"bob@example.com"`), 400, "malformed_json")
	})
}

func TestJWKSAndTokenForgery(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		access := e.account("carol@example.com").str("access_token")
		r := e.do("GET", "/.well-known/jwks.json", "", nil)
		expect(t, r, 200, "")
		keys := r.body["keys"].([]any)
		k := keys[0].(map[string]any)
		if len(keys) != 1 || k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["kid"] == "" {
			t.Fatalf("jwks %s", r.raw)
		}
		// The published key verifies the token, through the HTTP JWKS client.
		v := authn.NewVerifier(authn.NewJWKSClient(e.srv.URL+"/.well-known/jwks.json", nil))
		if _, err := v.Verify(context.Background(), access); err != nil {
			t.Fatalf("JWKS client: %v", err)
		}

		parts := strings.Split(access, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var claims map[string]any
		_ = json.Unmarshal(payload, &claims)
		kid := k["kid"].(string)
		enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
		adminClaims := map[string]any{}
		for key, val := range claims {
			adminClaims[key] = val
		}
		adminClaims["role"] = "admin"

		_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
		signOther := func(c jwt.MapClaims, kid string) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
			tok.Header["kid"] = kid
			s, _ := tok.SignedString(otherKey)
			return s
		}
		pubX, _ := base64.RawURLEncoding.DecodeString(k["x"].(string))
		hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims))
		hs.Header["kid"] = kid
		hsTok, _ := hs.SignedString(pubX) // HS256 keyed with the public key
		expired := jwt.MapClaims{}
		for key, val := range claims {
			expired[key] = val
		}
		expired["exp"] = time.Now().Add(-time.Hour).Unix()
		expired["iat"] = time.Now().Add(-2 * time.Hour).Unix()

		forged := map[string]string{
			"alg none":         enc(map[string]string{"alg": "none", "typ": "JWT", "kid": kid}) + "." + enc(adminClaims) + ".",
			"tampered payload": parts[0] + "." + enc(adminClaims) + "." + parts[2],
			"other key":        signOther(jwt.MapClaims(claims), kid),
			"unknown kid":      signOther(jwt.MapClaims(claims), "nope"),
			"hs256 confusion":  hsTok,
			"expired":          signOther(expired, kid),
			"garbage":          "not.a.token",
			"truncated":        parts[0] + "." + parts[1],
			"empty":            "",
		}
		for name, tok := range forged {
			t.Run(name, func(t *testing.T) {
				r := e.do("GET", "/api/v1/users/me", tok, nil)
				expect(t, r, 401, "")
				if name != "empty" && r.code() != "invalid_token" {
					t.Fatalf("code %s", r.code())
				}
			})
		}
	})
}

func TestExpiredAccessToken(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		e.account("dora@example.com")
		// Issue a token "an hour ago" by moving the service clock back.
		e.advance(-time.Hour)
		old := e.login("dora@example.com", "correct horse").str("access_token")
		e.advance(time.Hour)
		r := e.do("GET", "/api/v1/users/me", old, nil)
		expect(t, r, 401, "invalid_token")
		if r.header.Get("WWW-Authenticate") == "" {
			t.Fatal("no WWW-Authenticate")
		}
	})
}

func TestRefreshRotationAndReuse(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		first := e.account("erin@example.com")
		r1 := first.str("refresh_token")
		second := e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": r1})
		expect(t, second, 200, "")
		r2 := second.str("refresh_token")
		if r2 == r1 || second.str("access_token") == "" {
			t.Fatal("refresh must rotate")
		}
		expect(t, e.do("GET", "/api/v1/users/me", second.str("access_token"), nil), 200, "")
		// Reusing the rotated token revokes the whole family, r2 included.
		expect(t, e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": r1}), 401, "invalid_refresh_token")
		expect(t, e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": r2}), 401, "invalid_refresh_token")
		if len(e.events("TOKEN_REFRESH", "denied")) != 1 || len(e.events("TOKEN_REFRESH", "success")) != 1 {
			t.Fatal("refresh events")
		}
		// Another login is a separate family and still works.
		other := e.login("erin@example.com", "correct horse").str("refresh_token")
		expect(t, e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": other}), 200, "")

		expect(t, e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": "nonsense"}), 401, "invalid_refresh_token")
		expect(t, e.do("POST", "/api/v1/auth/refresh", "", map[string]string{}), 401, "invalid_refresh_token")
		expect(t, e.do("POST", "/api/v1/auth/refresh", "", `{"refresh_token": 5}`), 400, "invalid_field")

		// Concurrent use of one token: exactly one wins.
		tok := e.login("erin@example.com", "correct horse").str("refresh_token")
		var wg sync.WaitGroup
		statuses := make([]int, 8)
		for i := range statuses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i] = e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": tok}).status
			}()
		}
		wg.Wait()
		ok := 0
		for _, s := range statuses {
			if s == 200 {
				ok++
			} else if s != 401 {
				t.Fatalf("status %d", s)
			}
		}
		if ok != 1 {
			t.Fatalf("%d concurrent refreshes succeeded", ok)
		}
	})
}

func TestRefreshExpiry(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		r := e.account("fay@example.com").str("refresh_token")
		e.advance(31 * 24 * time.Hour)
		expect(t, e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": r}), 401, "invalid_refresh_token")
		if err := e.svc.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		var n int
		_ = e.db.R.QueryRow(`SELECT COUNT(*) FROM refresh_tokens`).Scan(&n)
		if n != 0 {
			t.Fatalf("%d expired tokens left after sweep", n)
		}
	})
}

func TestLogout(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		a := e.account("gus@example.com")
		b := e.account("hal@example.com")
		// Logout needs a bearer token.
		expect(t, e.do("POST", "/api/v1/auth/logout", "", map[string]string{"refresh_token": a.str("refresh_token")}), 401, "")
		// Someone else's refresh token is not revoked (and nothing is revealed).
		r := e.do("POST", "/api/v1/auth/logout", b.str("access_token"), map[string]string{"refresh_token": a.str("refresh_token")})
		if r.status != 204 {
			t.Fatalf("logout other: %d", r.status)
		}
		r = e.do("POST", "/api/v1/auth/logout", a.str("access_token"), map[string]string{"refresh_token": a.str("refresh_token")})
		if r.status != 204 {
			t.Fatalf("logout: %d %s", r.status, r.raw)
		}
		expect(t, e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": a.str("refresh_token")}), 401, "invalid_refresh_token")
		expect(t, e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": b.str("refresh_token")}), 200, "")
		if len(e.events("LOGOUT", "success")) != 1 {
			t.Fatal("logout event")
		}
	})
}

func TestLoginThrottling(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		e.account("ian@example.com")
		for i := 0; i < 3; i++ {
			expect(t, e.login("ian@example.com", "wrong password"), 401, "invalid_credentials")
		}
		// Per account: even the right password now waits.
		r := e.login("ian@example.com", "correct horse")
		expect(t, r, 429, "too_many_attempts")
		if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" {
			t.Fatalf("Retry-After %q", ra)
		}
		if len(e.events("LOGIN", "denied")) != 1 {
			t.Fatal("throttled login not recorded")
		}
		// After the window the account can log in again.
		e.advance(16 * time.Minute)
		expect(t, e.login("ian@example.com", "correct horse"), 200, "")

		// Per client address: failures on many accounts from one address.
		// The test server trusts 127.0.0.1, so X-Forwarded-For names the client.
		for i := 0; i < 6; i++ {
			expect(t, e.login("nobody"+string(rune('a'+i))+"@example.com", "x", "X-Forwarded-For", "203.0.113.7"), 401, "")
		}
		expect(t, e.login("ian@example.com", "correct horse", "X-Forwarded-For", "203.0.113.7"), 429, "too_many_attempts")
		expect(t, e.login("ian@example.com", "correct horse", "X-Forwarded-For", "203.0.113.8"), 200, "")
	})
}

// A burst of concurrent wrong passwords is throttled as if they came one
// by one: each attempt is counted before its password is checked.
func TestLoginThrottlingHoldsUnderABurst(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		e.account("burst@example.com")
		const n = 30
		codes := make(chan int, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() { codes <- e.login("burst@example.com", "wrong password").status })
		}
		wg.Wait()
		close(codes)
		count := map[int]int{}
		for c := range codes {
			count[c]++
		}
		// The test env allows 3 failures per account and address.
		if count[401] != 3 || count[429] != n-3 {
			t.Fatalf("answers to %d concurrent wrong passwords: %v, want 3×401 and %d×429", n, count, n-3)
		}
	})
}

// Failures from one address do not lock the owner out from another; many
// addresses together meet the slower per-account limit.
func TestLoginLockoutCannotBeAimedAtTheOwner(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		e.account("own@example.com")
		for range 3 {
			expect(t, e.login("own@example.com", "guess", "X-Forwarded-For", "203.0.113.50"), 401, "invalid_credentials")
		}
		expect(t, e.login("own@example.com", "correct horse", "X-Forwarded-For", "203.0.113.50"), 429, "too_many_attempts")
		expect(t, e.login("own@example.com", "correct horse", "X-Forwarded-For", "198.51.100.1"), 200, "")
		// With the 3 above, 30 failures (ten times the per-address limit)
		// from ten addresses.
		for i := range 9 {
			addr := fmt.Sprintf("203.0.113.%d", 60+i)
			for range 3 {
				expect(t, e.login("own@example.com", "guess", "X-Forwarded-For", addr), 401, "invalid_credentials")
			}
		}
		expect(t, e.login("own@example.com", "correct horse", "X-Forwarded-For", "198.51.100.2"), 429, "too_many_attempts")
	})
}

// Asking whether an email has an account by registering it costs as much
// as asking by logging in: "email taken" counts against the address's
// login limit. New accounts do not.
func TestRegistrationProbesAreThrottled(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		from := func(addr string) []string { return []string{"X-Forwarded-For", addr} }
		for i := range 8 {
			r := e.do("POST", "/api/v1/auth/register", "", map[string]string{"email": fmt.Sprintf("new%d@example.com", i),
				"password": "correct horse", "username": "n"}, from("203.0.113.20")...)
			expect(t, r, 201, "")
		}
		// The test env allows 6 failures per address.
		for range 6 {
			r := e.do("POST", "/api/v1/auth/register", "", map[string]string{"email": "new0@example.com",
				"password": "correct horse", "username": "n"}, from("203.0.113.20")...)
			expect(t, r, 409, "email_taken")
		}
		r := e.do("POST", "/api/v1/auth/register", "", map[string]string{"email": "new1@example.com",
			"password": "correct horse", "username": "n"}, from("203.0.113.20")...)
		expect(t, r, 429, "too_many_attempts")
		// The address's login failures share the budget; others are unaffected.
		expect(t, e.login("new2@example.com", "correct horse", from("203.0.113.20")...), 429, "too_many_attempts")
		expect(t, e.login("new2@example.com", "correct horse", from("203.0.113.21")...), 200, "")
	})
}

// Disabling an account revokes the access tokens it holds, and a demoted
// admin's token acts as a user's, on the next request: tokens are not
// believed past the account's standing.
func TestDisableAndDemoteBite(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		e.account("boss@example.com")
		boss := e.makeAdmin("boss@example.com")
		e.account("deputy@example.com")
		deputy := e.makeAdmin("deputy@example.com")
		joe := e.account("joe@example.com")
		joeTok := joe.str("access_token")
		joeID := joe.body["user"].(map[string]any)["id"].(string)
		expect(t, e.do("GET", "/api/v1/users/me", joeTok, nil), 200, "")
		expect(t, e.do("GET", "/api/v1/users", deputy, nil), 200, "")

		e.advance(time.Second) // the service's clock: iat has second precision
		expect(t, e.do("PATCH", "/api/v1/users/"+joeID, boss, map[string]any{"disabled": true}), 200, "")
		expect(t, e.do("GET", "/api/v1/users/me", joeTok, nil), 401, "token_revoked")
		// Enabled again, the old token stays revoked; a new login works.
		expect(t, e.do("PATCH", "/api/v1/users/"+joeID, boss, map[string]any{"disabled": false}), 200, "")
		expect(t, e.do("GET", "/api/v1/users/me", joeTok, nil), 401, "token_revoked")
		e.advance(time.Second)
		fresh := e.login("joe@example.com", "correct horse")
		expect(t, fresh, 200, "")
		expect(t, e.do("GET", "/api/v1/users/me", fresh.str("access_token"), nil), 200, "")

		deputyID := e.do("GET", "/api/v1/users/me", deputy, nil).body["user"].(map[string]any)["id"].(string)
		expect(t, e.do("PATCH", "/api/v1/users/"+deputyID, boss, map[string]any{"role": "user"}), 200, "")
		expect(t, e.do("GET", "/api/v1/users", deputy, nil), 403, "")
		expect(t, e.do("GET", "/api/v1/users/me", deputy, nil), 200, "")
	})
}

func TestDisabledUser(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		admin := e.account("root@example.com")
		adminTok := e.makeAdmin("root@example.com")
		_ = admin
		u := e.account("joe@example.com")
		id := u.body["user"].(map[string]any)["id"].(string)
		r := e.do("PATCH", "/api/v1/users/"+id, adminTok, map[string]any{"disabled": true})
		expect(t, r, 200, "")
		if r.body["user"].(map[string]any)["disabled"] != true {
			t.Fatal(r.raw)
		}
		expect(t, e.login("joe@example.com", "correct horse"), 403, "account_disabled")
		expect(t, e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": u.str("refresh_token")}), 401, "invalid_refresh_token")
		// Re-enabled, the account logs in again.
		expect(t, e.do("PATCH", "/api/v1/users/"+id, adminTok, map[string]any{"disabled": false}), 200, "")
		expect(t, e.login("joe@example.com", "correct horse"), 200, "")
	})
}

func TestUpdateMe(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		a := e.account("kim@example.com")
		tok := a.str("access_token")
		r := e.do("PATCH", "/api/v1/users/me", tok, map[string]any{"username": "Kimberly"})
		expect(t, r, 200, "")
		if r.body["user"].(map[string]any)["username"] != "Kimberly" {
			t.Fatal(r.raw)
		}
		expect(t, e.do("PATCH", "/api/v1/users/me", tok, map[string]any{"password": "new password"}), 422, "validation_failed")
		expect(t, e.do("PATCH", "/api/v1/users/me", tok, map[string]any{"password": "new password", "current_password": "wrong one!"}), 403, "wrong_password")
		expect(t, e.do("PATCH", "/api/v1/users/me", tok, map[string]any{"password": "short", "current_password": "correct horse"}), 422, "validation_failed")
		expect(t, e.do("PATCH", "/api/v1/users/me", tok, map[string]any{"role": "admin"}), 400, "invalid_field")
		expect(t, e.do("PATCH", "/api/v1/users/me", tok, map[string]any{"password": "new password", "current_password": "correct horse"}), 200, "")
		// The password change signs out other sessions.
		expect(t, e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": a.str("refresh_token")}), 401, "")
		expect(t, e.login("kim@example.com", "correct horse"), 401, "invalid_credentials")
		expect(t, e.login("kim@example.com", "new password"), 200, "")
		expect(t, e.do("PATCH", "/api/v1/users/me", "", map[string]any{"username": "x"}), 401, "")
		if len(e.events("UPDATE_USER", "success")) != 2 {
			t.Fatal("update events")
		}
	})
}

// limitsRecorder is a LimitSetter that records its calls and fails with
// fail when set.
type limitsRecorder struct {
	mu    sync.Mutex
	calls []string
	fail  error
}

func (l *limitsRecorder) SetLimits(_ context.Context, id string, _ users.Limits) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, id)
	return l.fail
}

func (l *limitsRecorder) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

// The overrides go to other services, outside the users transaction: an
// update that will be refused sets none, and one whose overrides fail
// changes nothing in the account.
func TestAdminUpdateLimitsFirst(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		lim := &limitsRecorder{}
		e.svc.SetLimitSetter(lim)
		e.account("root@example.com")
		adminTok := e.makeAdmin("root@example.com")
		rootID := e.do("GET", "/api/v1/users/me", adminTok, nil).body["user"].(map[string]any)["id"].(string)
		id := e.account("lee@example.com").body["user"].(map[string]any)["id"].(string)
		quota := map[string]any{"storage_quota_bytes": 10}

		expect(t, e.do("PATCH", "/api/v1/users/00000000-0000-0000-0000-000000000000", adminTok, quota), 404, "user_not_found")
		expect(t, e.do("PATCH", "/api/v1/users/"+rootID, adminTok, map[string]any{"role": "user", "storage_quota_bytes": 10}), 409, "last_admin")
		if n := lim.count(); n != 0 {
			t.Fatalf("refused updates set limits %d times", n)
		}

		lim.fail = errs.New(errs.Unavailable, "storage_unavailable", "the storage service is unavailable")
		expect(t, e.do("PATCH", "/api/v1/users/"+id, adminTok, map[string]any{"role": "admin", "storage_quota_bytes": 10}), 503, "storage_unavailable")
		if u := e.do("GET", "/api/v1/users/"+id, adminTok, nil).body["user"].(map[string]any); u["role"] != "user" {
			t.Fatalf("an update whose limits failed changed the account: %v", u)
		}
		if n := len(e.events("UPDATE_USER", "success")); n != 0 {
			t.Fatalf("%d UPDATE_USER events for an update that failed", n)
		}

		lim.fail = nil
		expect(t, e.do("PATCH", "/api/v1/users/"+id, adminTok, map[string]any{"role": "admin", "storage_quota_bytes": 10}), 200, "")
		if u := e.do("GET", "/api/v1/users/"+id, adminTok, nil).body["user"].(map[string]any); u["role"] != "admin" {
			t.Fatalf("role not applied: %v", u)
		}
		if n := lim.count(); n != 2 || len(e.events("UPDATE_USER", "success")) != 1 {
			t.Fatalf("limits set %d times, events %d", n, len(e.events("UPDATE_USER", "success")))
		}
	})
}

func TestAdminRoutes(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		e.account("root@example.com")
		adminTok := e.makeAdmin("root@example.com")
		user := e.account("lee@example.com")
		userTok := user.str("access_token")
		id := user.body["user"].(map[string]any)["id"].(string)

		// Users cannot use admin routes; anonymous callers are 401.
		expect(t, e.do("GET", "/api/v1/users", userTok, nil), 403, "admin_required")
		expect(t, e.do("GET", "/api/v1/users/"+id, userTok, nil), 403, "admin_required")
		expect(t, e.do("PATCH", "/api/v1/users/"+id, userTok, map[string]any{"role": "admin"}), 403, "admin_required")
		expect(t, e.do("GET", "/api/v1/users", "", nil), 401, "")

		expect(t, e.do("GET", "/api/v1/users/"+id, adminTok, nil), 200, "")
		expect(t, e.do("GET", "/api/v1/users/00000000-0000-0000-0000-000000000000", adminTok, nil), 404, "user_not_found")
		expect(t, e.do("GET", "/api/v1/users/not-a-uuid", adminTok, nil), 404, "user_not_found")
		expect(t, e.do("PATCH", "/api/v1/users/"+id, adminTok, map[string]any{"role": "owner"}), 422, "validation_failed")
		expect(t, e.do("PATCH", "/api/v1/users/"+id, adminTok, map[string]any{"disabled": "yes"}), 400, "invalid_field")
		// Limits need the storage and usage services, which this test does not run.
		expect(t, e.do("PATCH", "/api/v1/users/"+id, adminTok, map[string]any{"storage_quota_bytes": 10}), 503, "limits_unavailable")
		expect(t, e.do("PATCH", "/api/v1/users/"+id, adminTok, map[string]any{"storage_quota_bytes": -5}), 422, "validation_failed")
		// A limit that storage or usage would refuse fails the whole update,
		// before the role or the disabled flag change.
		r0 := e.do("PATCH", "/api/v1/users/"+id, adminTok, map[string]any{"role": "admin", "disabled": true, "daily_egress_limit_bytes": int64(1)<<50 + 1})
		expect(t, r0, 422, "validation_failed")
		if u := e.do("GET", "/api/v1/users/"+id, adminTok, nil).body["user"].(map[string]any); u["role"] != "user" || u["disabled"] != false {
			t.Fatalf("a refused update changed the user: %v", u)
		}

		r := e.do("PATCH", "/api/v1/users/"+id, adminTok, map[string]any{"role": "admin"})
		expect(t, r, 200, "")
		// The last enabled admin cannot be demoted.
		rootID := e.do("GET", "/api/v1/users/me", adminTok, nil).body["user"].(map[string]any)["id"].(string)
		expect(t, e.do("PATCH", "/api/v1/users/"+id, adminTok, map[string]any{"role": "user"}), 200, "")
		expect(t, e.do("PATCH", "/api/v1/users/"+rootID, adminTok, map[string]any{"disabled": true}), 409, "last_admin")

		// Pagination: newest first, no duplicates or gaps.
		for i := 0; i < 5; i++ {
			expect(t, e.register("p"+string(rune('a'+i))+"@example.com", "correct horse", "p"), 201, "")
		}
		seen := map[string]bool{}
		cursor := ""
		pages := 0
		for {
			path := "/api/v1/users?limit=3"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			r := e.do("GET", path, adminTok, nil)
			expect(t, r, 200, "")
			pages++
			for _, it := range r.body["items"].([]any) {
				uid := it.(map[string]any)["id"].(string)
				if seen[uid] {
					t.Fatalf("duplicate %s", uid)
				}
				seen[uid] = true
			}
			next, _ := r.body["next_cursor"].(string)
			if next == "" {
				break
			}
			cursor = next
		}
		if len(seen) != 7 || pages != 3 {
			t.Fatalf("%d users over %d pages", len(seen), pages)
		}
		expect(t, e.do("GET", "/api/v1/users?cursor=bm9wZQ", adminTok, nil), 400, "invalid_cursor")
		expect(t, e.do("GET", "/api/v1/users?limit=0", adminTok, nil), 400, "invalid_limit")
		expect(t, e.do("GET", "/api/v1/users?limit=abc", adminTok, nil), 400, "invalid_limit")
	})
}

func TestKeyRotation(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		old := e.account("max@example.com").str("access_token")
		if err := e.svc.RotateKey(context.Background()); err != nil {
			t.Fatal(err)
		}
		fresh := e.login("max@example.com", "correct horse").str("access_token")
		// Tokens signed before the rotation stay valid; both keys are published.
		expect(t, e.do("GET", "/api/v1/users/me", old, nil), 200, "")
		expect(t, e.do("GET", "/api/v1/users/me", fresh, nil), 200, "")
		if n := len(e.do("GET", "/.well-known/jwks.json", "", nil).body["keys"].([]any)); n != 2 {
			t.Fatalf("%d keys published", n)
		}
		// A restarted service loads the same keys from the database.
		svc2, err := users.New(context.Background(), e.db, outbox.New(e.db, "users_outbox"), users.NewHasher(1), users.Config{AccessTTL: time.Minute, RefreshTTL: time.Hour, LoginMaxPerAccount: 1, LoginMaxPerIP: 1, LoginWindow: time.Minute}, obs.Discard())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := authn.NewVerifier(svc2).Verify(context.Background(), fresh); err != nil {
			t.Fatalf("restarted service rejects its token: %v", err)
		}
	})
}

func TestBootstrap(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		if err := e.svc.Bootstrap(ctx, "Boss@Example.com", "correct horse"); err != nil {
			t.Fatal(err)
		}
		// Idempotent: an admin exists, nothing happens.
		if err := e.svc.Bootstrap(ctx, "other@example.com", "correct horse"); err != nil {
			t.Fatal(err)
		}
		r := e.login("boss@example.com", "correct horse")
		expect(t, r, 200, "")
		if r.body["user"].(map[string]any)["role"] != "admin" {
			t.Fatal(r.raw)
		}
		expect(t, e.login("other@example.com", "correct horse"), 401, "")
	})
}

func TestHasherBoundsConcurrency(t *testing.T) {
	h := users.NewHasher(1)
	hash, err := h.Hash(context.Background(), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	ok, err := h.Verify(context.Background(), "correct horse", hash)
	if err != nil || !ok {
		t.Fatalf("verify: %v %v", ok, err)
	}
	if ok, _ := h.Verify(context.Background(), "wrong", hash); ok {
		t.Fatal("wrong password accepted")
	}
	if _, err := h.Verify(context.Background(), "x", "$argon2id$garbage"); err == nil {
		t.Fatal("malformed hash accepted")
	}
}

// A PHC string made by argon2's reference implementation (RFC 9106's
// phc-winner-argon2: "password", "somesalt", t=2, m=64 MiB, p=1) verifies:
// stored hashes do not depend on which argon2 code made them.
func TestVerifyReferenceHash(t *testing.T) {
	const ref = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	h := users.NewHasher(1)
	if ok, err := h.Verify(context.Background(), "password", ref); err != nil || !ok {
		t.Fatalf("reference hash: %v %v", ok, err)
	}
	if ok, _ := h.Verify(context.Background(), "passwore", ref); ok {
		t.Fatal("reference hash accepted another password")
	}
}

// A rotation done elsewhere (another replica, or `reel keys rotate`) is
// picked up by ReloadKeys; retired keys are deleted once their tokens
// have all expired.
func TestKeyReloadAndRetirement(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		old := e.account("ned@example.com").str("access_token")
		other, err := users.New(ctx, e.db, outbox.New(e.db, "users_outbox"), users.NewHasher(1), users.Config{AccessTTL: 15 * time.Minute, RefreshTTL: time.Hour, LoginMaxPerAccount: 1, LoginMaxPerIP: 1, LoginWindow: time.Minute}, obs.Discard())
		if err != nil {
			t.Fatal(err)
		}
		if err := other.RotateKey(ctx); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.ReloadKeys(ctx); err != nil {
			t.Fatal(err)
		}
		fresh := e.login("ned@example.com", "correct horse").str("access_token")
		kid := func(tok string) string {
			h, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
			var m map[string]any
			_ = json.Unmarshal(h, &m)
			return m["kid"].(string)
		}
		if kid(old) == kid(fresh) {
			t.Fatal("reloaded service still signs with the retired key")
		}
		e.advance(15*time.Minute + 2*time.Hour)
		if err := e.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.ReloadKeys(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(e.svc.JWKS().Keys); n != 1 {
			t.Fatalf("%d keys after retirement", n)
		}
	})
}

// Storage and usage in other processes ask whether an account exists
// through the internal route, with a service credential.
func TestClientUserExists(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		const key = "a service key of at least 32 characters"
		provider, err := authn.NewServiceKeys(key, "users")
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		users.NewHandler(e.svc, authn.NewVerifier(e.svc)).InternalRoutes(mux, provider)
		srv := httptest.NewServer(httpx.Wrap(mux, httpx.MiddlewareConfig{Logger: obs.Discard()}))
		defer srv.Close()
		caller, err := authn.NewServiceKeys(key, "storage")
		if err != nil {
			t.Fatal(err)
		}
		c := users.NewClient(srv.URL, caller, nil)

		acct := e.account("kim@example.com")
		id, tok := acct.body["user"].(map[string]any)["id"].(string), acct.str("access_token")
		if _, err := e.db.W.Exec(`UPDATE users SET disabled = TRUE WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		for in, want := range map[string]bool{
			id:                                     true, // disabled accounts exist too
			"00000000-0000-0000-0000-000000000000": false,
			"not-a-uuid":                           false,
			"../../auth/login":                     false,
		} {
			if got, err := c.UserExists(t.Context(), in); err != nil || got != want {
				t.Errorf("%q: %v %v, want %v", in, got, err, want)
			}
		}
		// A user's token is not a service credential.
		req, _ := http.NewRequest("GET", srv.URL+"/internal/v1/users/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != 401 {
			t.Fatalf("user token on the internal route: %d", res.StatusCode)
		}
		// A users service that cannot be reached is unavailable, not "no".
		srv.Close()
		if got, err := c.UserExists(t.Context(), id); got || errs.KindOf(err) != errs.Unavailable {
			t.Fatalf("users down: %v %v", got, err)
		}
	})
}
