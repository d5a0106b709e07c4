package users_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
	"github.com/reel-video/reel/internal/users"
)

// A successful login still forgets the account's earlier failures (it
// only skips the DELETE when there are none): two failures, a success and
// two more failures leave the account below the limit of three.
func TestLoginClearsFailures(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		e.account("kim@example.com")
		for range 2 {
			for range 2 {
				expect(t, e.login("kim@example.com", "wrong password"), 401, "invalid_credentials")
			}
			expect(t, e.login("kim@example.com", "correct horse"), 200, "")
		}
		expect(t, e.login("kim@example.com", "correct horse"), 200, "")
	})
}

// BenchmarkLogin is Service.Login (throttle check, user lookup, argon2id,
// refresh token and event in one transaction) on every core at once; set
// it beside BenchmarkIDKey, the bound. Its logins/s over that figure is
// what the database work costs.
func BenchmarkLogin(b *testing.B) {
	engines := map[string]func(testing.TB) string{"sqlite": sqldbtest.SQLiteURL, "postgres": sqldbtest.PostgresURL}
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			url := engines[name](b)
			db := sqldbtest.OpenURL(b, url, users.Migrations(), users.MigrationTable)
			ctx := context.Background()
			if err := sqldb.Migrate(ctx, db, outbox.Migrations("users_outbox", db.Dialect), outbox.VersionTable("users_outbox")); err != nil {
				b.Fatal(err)
			}
			cfg := users.Config{AccessTTL: 15 * time.Minute, RefreshTTL: time.Hour, LoginMaxPerAccount: 1000, LoginMaxPerIP: 1000, LoginWindow: time.Minute}
			svc, err := users.New(ctx, db, outbox.New(db, "users_outbox"), users.NewHasher(runtime.GOMAXPROCS(0)), cfg, obs.Discard())
			if err != nil {
				b.Fatal(err)
			}
			const accounts = 8
			for i := range accounts {
				if _, err := svc.Register(ctx, users.RegisterInput{Email: fmt.Sprintf("b%d@example.com", i), Password: "correct horse battery", Username: fmt.Sprintf("b%d", i)}); err != nil {
					b.Fatal(err)
				}
			}
			var next atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				email := fmt.Sprintf("b%d@example.com", next.Add(1)%accounts)
				for pb.Next() {
					if _, err := svc.Login(ctx, email, "correct horse battery"); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
		})
	}
}

// Text that PostgreSQL refuses (a NUL byte) or that no account can hold
// (control characters) is the client's mistake on both engines: a 422 for
// a username, a failed login for an email, a bad cursor for a list.
func TestTextWithControlCharacters(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		expect(t, e.register("nul@example.com", "correct horse", "a\x00b"), 422, "validation_failed")
		expect(t, e.register("esc@example.com", "correct horse", "a\x1b[31mred"), 422, "validation_failed")
		// Invisible formatting: a name that looks like another's, or reads
		// backwards.
		expect(t, e.register("zw@example.com", "correct horse", "a\u200bnn"), 422, "validation_failed")
		expect(t, e.register("rlo@example.com", "correct horse", "\u202etxt.exe"), 422, "validation_failed")
		expect(t, e.register("emoji@example.com", "correct horse", "Zoë 🎬"), 201, "")
		e.account("kim@example.com")
		expect(t, e.login("kim\x00@example.com", "correct horse"), 401, "invalid_credentials")
		admin := e.makeAdmin("kim@example.com")
		cursor := base64.RawURLEncoding.EncodeToString([]byte("1|a\x00b"))
		expect(t, e.do("GET", "/api/v1/users?cursor="+cursor, admin, nil), 400, "invalid_cursor")
		cursor = base64.RawURLEncoding.EncodeToString([]byte("1|\xff\xfe"))
		expect(t, e.do("GET", "/api/v1/users?cursor="+cursor, admin, nil), 400, "invalid_cursor")
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
