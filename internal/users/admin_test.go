package users_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/users"
)

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

// Every change of an account moves the accounts version, in its own
// transaction, and nothing else does; another process's verifier, watching
// it over the internal route, then reads the account's standing again.
func TestAccountsVersion(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		_, c := e.internal(t)
		version := func() int64 {
			t.Helper()
			v, err := e.svc.AccountsVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rv, err := c.AccountsVersion(ctx); err != nil || rv != v {
				t.Fatalf("the internal route's version: %d %v, want %d", rv, err, v)
			}
			return v
		}
		e.account("boss@example.com")
		boss := e.makeAdmin("boss@example.com")
		joe := e.account("joe@example.com")
		joeTok := joe.str("access_token")
		joeID := joe.body["user"].(map[string]any)["id"].(string)

		// Another replica: its verifier reads standings from the internal
		// route and relies on the version, with no Forget from this one.
		other := authn.NewVerifier(e.svc)
		w := authn.NewWatch(c)
		other.SetStanding(c, w)
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
		claims, err := other.Verify(ctx, joeTok)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.CallerOf(ctx, claims); err != nil {
			t.Fatalf("joe on the other replica: %v", err)
		}

		v := version()
		e.register("ann@example.com", "correct horse", "ann")
		e.login("joe@example.com", "correct horse")
		e.login("joe@example.com", "wrong horse")
		if got := version(); got != v {
			t.Fatalf("version moved from %d to %d with no account changed", v, got)
		}
		expect(t, e.do("PATCH", "/api/v1/users/me", joeTok, map[string]any{"username": "Joseph"}), 200, "")
		if got := version(); got <= v {
			t.Fatalf("version %d after a new name, was %d", got, v)
		}
		v = version()
		e.advance(time.Second) // iat has second precision
		expect(t, e.do("PATCH", "/api/v1/users/"+joeID, boss, map[string]any{"disabled": true}), 200, "")
		if got := version(); got <= v {
			t.Fatalf("version %d after disabling, was %d", got, v)
		}
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
		// Within its few seconds the other replica would have believed its
		// entry: the version makes it read the standing again.
		if _, err := other.CallerOf(ctx, claims); !errors.Is(err, authn.ErrRevoked) {
			t.Fatalf("joe disabled, on the other replica: %v, want ErrRevoked", err)
		}
	})
}
