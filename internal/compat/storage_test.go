package compat_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/reel-video/reel/internal/compat"
	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/authn/authntest"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
	"github.com/reel-video/reel/internal/storage"
)

// The storage part alone, as the storage process serves it.
func TestStorageUsage(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		must(t, sqldb.Migrate(ctx, db, outbox.Migrations("storage_outbox", db.Dialect), outbox.VersionTable("storage_outbox")))
		svc := storage.New(db, outbox.New(db, "storage_outbox"), storage.Config{DefaultQuota: 50 << 20}, obs.Discard())
		iss := authntest.New(t)
		mux := http.NewServeMux()
		compat.NewStorage(svc, iss.Verifier()).Routes(mux)
		srv := httptest.NewServer(httpx.Wrap(mux, httpx.MiddlewareConfig{Logger: obs.Discard()}))
		t.Cleanup(srv.Close)

		user := authntest.NewUserID()
		tok := iss.Token(t, user, authn.RoleUser)
		get := func() reply { return call(t, srv.URL, req{method: "GET", path: "/api/storage/usage", token: tok}) }
		figures := func(total, max float64, pct string) map[string]any {
			return map[string]any{"totalSizeMb": total, "maxStorageMb": max, "usagePercentage": pct}
		}

		expect(t, "no token", call(t, srv.URL, req{method: "GET", path: "/api/storage/usage"}), 401, msg("Token not provided"))
		expect(t, "bad token", call(t, srv.URL, req{method: "GET", path: "/api/storage/usage", token: "abc"}), 401, msg("Invalid or expired token"))
		expect(t, "nothing stored", get(), 200, figures(0, 50, "0.00"))

		// 12.5 MiB stored of 50 MiB: MB means MiB, as in the original.
		must(t, svc.Charge(ctx, user, "videos/a/original", 25<<19))
		expect(t, "a quarter", get(), 200, figures(12.5, 50, "25.00"))
		must(t, svc.Charge(ctx, user, "videos/b/original", 1234567))
		expect(t, "rounded", get(), 200, figures(13.68, 50, "27.35"))
		if _, err := svc.Free(ctx, user, "videos/b/original"); err != nil {
			t.Fatal(err)
		}
		must(t, svc.SetQuota(ctx, user, 20<<20))
		expect(t, "lower quota", get(), 200, figures(12.5, 20, "62.50"))
		must(t, svc.SetQuota(ctx, user, 10<<20))
		expect(t, "over quota", get(), 200, figures(12.5, 10, "125.00"))
		must(t, svc.SetQuota(ctx, user, storage.Unlimited))
		expect(t, "unlimited", get(), 200, figures(12.5, -1, "0.00"))
		must(t, svc.SetQuota(ctx, user, 0))
		expect(t, "no quota", get(), 200, figures(12.5, 0, "100.00"))
	}, storage.Migrations(), storage.MigrationTable)
}
