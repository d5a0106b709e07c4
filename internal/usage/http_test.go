package usage_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/authn/authntest"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
	"github.com/reel-video/reel/internal/usage"
)

func get(t *testing.T, url, token string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, b
}

func TestPublicRoutes(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		svc, c, ob := newService(t, db)
		iss := authntest.New(t)
		keys, err := authn.NewServiceKeys(serviceKey, "usage")
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		dir := &authntest.Directory{}
		h := usage.NewHandler(svc, iss.Verifier(), dir)
		h.Routes(mux)
		h.InternalRoutes(mux, keys)
		srv := httptest.NewServer(httpx.Wrap(mux, httpx.MiddlewareConfig{Logger: obs.Discard()}))
		defer srv.Close()

		alice, bob, admin := authntest.NewUserID(), authntest.NewUserID(), authntest.NewUserID()
		dir.Add(alice, bob, admin)
		aliceTok, bobTok, adminTok := iss.Token(t, alice, authn.RoleUser), iss.Token(t, bob, authn.RoleUser), iss.Token(t, admin, authn.RoleAdmin)

		// Yesterday and today for alice.
		c.Set(day0.Add(noon).AddDate(0, 0, -1))
		r, err := svc.ReserveUpload(ctx, alice, 400, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.CommitUpload(ctx, r.ID, 400); err != nil {
			t.Fatal(err)
		}
		c.Set(day0.Add(noon))
		if _, err := svc.ReserveUpload(ctx, alice, 100, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := svc.AddEgress(ctx, "b1", map[string]int64{alice: 2500}); err != nil {
			t.Fatal(err)
		}

		status, hdr, body := get(t, srv.URL+"/api/v1/usage/me", aliceTok)
		if status != 200 || hdr.Get("Content-Type") != "application/json" {
			t.Fatalf("me: %d %s", status, body)
		}
		var me map[string]any
		if err := json.Unmarshal(body, &me); err != nil {
			t.Fatal(err)
		}
		if me["day"] != "2025-03-14" || me["resets_at"] != "2025-03-15T00:00:00Z" {
			t.Fatalf("me: %s", body)
		}
		up, _ := me["upload"].(map[string]any)
		eg, _ := me["egress"].(map[string]any)
		if up["used_bytes"] != 0.0 || up["limit_bytes"] != float64(defaultUpload) || up["reserved_bytes"] != 100.0 ||
			eg["used_bytes"] != 2500.0 || eg["limit_bytes"] != float64(defaultEgress) {
			t.Fatalf("me: %s", body)
		}
		if n := events(t, ob, db, "CHECK_BANDWIDTH", alice); n != 1 {
			t.Fatalf("%d CHECK_BANDWIDTH events", n)
		}

		// A user cannot read another user's usage, not even their own
		// through the admin route.
		for _, id := range []string{alice, bob} {
			if status, _, body := get(t, srv.URL+"/api/v1/usage/users/"+id, bobTok); status != 403 || !strings.Contains(string(body), "admin_required") {
				t.Fatalf("user reads %s: %d %s", id, status, body)
			}
		}
		// Admins can: one row per day, zeros included.
		status, _, body = get(t, srv.URL+"/api/v1/usage/users/"+alice+"?from=2025-03-12&to=2025-03-14", adminTok)
		var hist usage.History
		if status != 200 || json.Unmarshal(body, &hist) != nil {
			t.Fatalf("history: %d %s", status, body)
		}
		if hist.UserID != alice || hist.From != "2025-03-12" || hist.To != "2025-03-14" || len(hist.Items) != 3 ||
			hist.Items[0].Upload.UsedBytes != 0 || hist.Items[1].Upload.UsedBytes != 400 ||
			hist.Items[2].Upload.ReservedBytes != 100 || hist.Items[2].Egress.UsedBytes != 2500 ||
			hist.Items[1].Day != "2025-03-13" || !hist.Items[1].ResetsAt.Equal(day0) {
			t.Fatalf("history: %s", body)
		}
		if n := events(t, ob, db, "CHECK_BANDWIDTH", admin); n != 1 {
			t.Fatalf("%d CHECK_BANDWIDTH events by the admin", n)
		}
		// Without bounds: the last 30 days.
		status, _, body = get(t, srv.URL+"/api/v1/usage/users/"+alice, adminTok)
		if status != 200 || json.Unmarshal(body, &hist) != nil || len(hist.Items) != 30 || hist.To != "2025-03-14" || hist.From != "2025-02-13" {
			t.Fatalf("default range: %d %d items from %s to %s", status, len(hist.Items), hist.From, hist.To)
		}

		// Bad inputs: 400.
		for _, q := range []string{
			"?from=2025-3-1", "?from=yesterday", "?to=2025-02-30", "?from=2025-03-14T00:00:00Z",
			"?from=2025-03-15&to=2025-03-14", "?from=2024-01-01&to=2025-03-14",
			"?from=9999-12-31&to=9999-12-31", "?from=1969-12-31&to=1969-12-31",
		} {
			status, hdr, body := get(t, srv.URL+"/api/v1/usage/users/"+alice+q, adminTok)
			if status != 400 || hdr.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(body), "invalid_query") {
				t.Fatalf("%s: %d %s", q, status, body)
			}
		}
		if status, _, body := get(t, srv.URL+"/api/v1/usage/users/nobody", adminTok); status != 400 || !strings.Contains(string(body), "invalid_user_id") {
			t.Fatalf("bad id: %d %s", status, body)
		}
		// An id no account has: 404, not a history of zeros; and 503 while
		// the users service cannot say.
		if status, _, body := get(t, srv.URL+"/api/v1/usage/users/"+authntest.NewUserID(), adminTok); status != 404 || !strings.Contains(string(body), "user_not_found") {
			t.Fatalf("unknown id: %d %s", status, body)
		}
		dir.Fail(errs.ErrUnavailable)
		if status, hdr, body := get(t, srv.URL+"/api/v1/usage/users/"+alice, adminTok); status != 503 || hdr.Get("Retry-After") == "" {
			t.Fatalf("users down: %d %s", status, body)
		}
		dir.Fail(nil)
		// Anonymous: 401.
		for _, p := range []string{"/api/v1/usage/me", "/api/v1/usage/users/" + alice} {
			if status, _, _ := get(t, srv.URL+p, ""); status != 401 {
				t.Fatalf("anonymous %s: %d", p, status)
			}
		}
		// Internal routes want a service credential.
		if status, _, _ := get(t, srv.URL+"/internal/v1/usage/users/"+alice+"/allowance", adminTok); status != 401 {
			t.Fatalf("internal route with a user token: %d", status)
		}
		// The refusal carries Retry-After until midnight UTC over HTTP too.
		_, err = usage.NewClient(srv.URL, keys, nil).ReserveUpload(ctx, alice, 901, time.Hour)
		wantLimit(t, err, noon)
	}, usage.Migrations(), usage.MigrationTable)
}
