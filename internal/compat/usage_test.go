package compat_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/compat"
	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/authn/authntest"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
	"github.com/reel-video/reel/internal/usage"
)

// The usage part alone, as the usage process serves it.
func TestDailyUsage(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		must(t, sqldb.Migrate(ctx, db, outbox.Migrations("usage_outbox", db.Dialect), outbox.VersionTable("usage_outbox")))
		svc := usage.New(db, outbox.New(db, "usage_outbox"), usage.Config{DailyUpload: 100 << 20, DailyEgress: 1 << 30}, obs.Discard())
		iss := authntest.New(t)
		mux := http.NewServeMux()
		compat.NewUsage(svc, iss.Verifier()).Routes(mux)
		srv := httptest.NewServer(httpx.Wrap(mux, httpx.MiddlewareConfig{Logger: obs.Discard()}))
		t.Cleanup(srv.Close)

		user := authntest.NewUserID()
		tok := iss.Token(t, user, authn.RoleUser)
		get := func() reply { return call(t, srv.URL, req{method: "GET", path: "/api/usage/daily-usage", token: tok}) }
		const within, exceeded = "Bandwidth usage is within the daily limit.", "Daily bandwidth limit exceeded. No further uploads allowed."
		figures := func(total, limit float64, over bool, m string) map[string]any {
			return map[string]any{"totalUsageMb": total, "dailyLimitMb": limit, "isThresholdExceeded": over, "message": m}
		}
		upload := func(n int64) {
			t.Helper()
			r, err := svc.ReserveUpload(ctx, user, n, time.Hour)
			must(t, err)
			must(t, svc.CommitUpload(ctx, r.ID, n))
		}

		expect(t, "no token", call(t, srv.URL, req{method: "GET", path: "/api/usage/daily-usage"}), 401, msg("Token not provided"))
		expect(t, "bad token", call(t, srv.URL, req{method: "GET", path: "/api/usage/daily-usage", token: "x"}), 401, msg("Invalid or expired token"))
		expect(t, "nothing today", get(), 200, figures(0, 100, false, within))
		upload(30 << 20)
		upload(25 << 19)
		expect(t, "42.5 MiB", get(), 200, figures(42.5, 100, false, within))
		// Egress (what viewers stream) is not the original's bandwidth.
		must(t, svc.AddEgress(ctx, "", map[string]int64{user: 500 << 20}))
		expect(t, "egress does not count", get(), 200, figures(42.5, 100, false, within))
		lim := int64(40 << 20)
		must(t, svc.SetLimits(ctx, user, usage.Limits{DailyUpload: &lim}))
		expect(t, "over a lowered limit", get(), 200, figures(42.5, 40, true, exceeded))
		lim = 42<<20 + 1<<19
		must(t, svc.SetLimits(ctx, user, usage.Limits{DailyUpload: &lim}))
		expect(t, "exactly at the limit", get(), 200, figures(42.5, 42.5, true, exceeded))
		lim = usage.Unlimited
		must(t, svc.SetLimits(ctx, user, usage.Limits{DailyUpload: &lim}))
		expect(t, "unlimited", get(), 200, figures(42.5, -1, false, within))
	}, usage.Migrations(), usage.MigrationTable)
}
