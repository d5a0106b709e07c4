package users_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"runtime"
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
