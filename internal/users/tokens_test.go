package users_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/users"
)

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
