package storage_test

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
	"github.com/reel-video/reel/internal/storage"
)

// get does a GET over a real socket and returns the status, headers and
// body.
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
		svc, _, ob := newService(t, db)
		iss := authntest.New(t)
		keys, err := authn.NewServiceKeys(serviceKey, "storage")
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		dir := &authntest.Directory{}
		h := storage.NewHandler(svc, iss.Verifier(), dir)
		h.Routes(mux)
		h.InternalRoutes(mux, keys)
		srv := httptest.NewServer(httpx.Wrap(mux, httpx.MiddlewareConfig{Logger: obs.Discard()}))
		defer srv.Close()

		alice, bob, admin := authntest.NewUserID(), authntest.NewUserID(), authntest.NewUserID()
		dir.Add(alice, bob, admin)
		aliceTok, adminTok := iss.Token(t, alice, authn.RoleUser), iss.Token(t, admin, authn.RoleAdmin)
		r, err := svc.Reserve(t.Context(), alice, 300, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Commit(t.Context(), r.ID, 200, "v1"); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Reserve(t.Context(), alice, 100, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := svc.SetQuota(t.Context(), bob, storage.Unlimited); err != nil {
			t.Fatal(err)
		}

		// The caller's own figures, in the documented shape.
		status, hdr, body := get(t, srv.URL+"/api/v1/storage/me", aliceTok)
		if status != 200 || hdr.Get("Content-Type") != "application/json" {
			t.Fatalf("me: %d %s", status, body)
		}
		var fields map[string]any
		if err := json.Unmarshal(body, &fields); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"used_bytes": 200.0, "reserved_bytes": 100.0, "quota_bytes": 1000.0, "available_bytes": 700.0}
		if len(fields) != len(want) {
			t.Fatalf("me: %s", body)
		}
		for k, v := range want {
			if fields[k] != v {
				t.Fatalf("me: %s = %v, want %v (%s)", k, fields[k], v, body)
			}
		}
		if n := events(t, ob, db, "CHECK_STORAGE", alice); n != 1 {
			t.Fatalf("%d CHECK_STORAGE events", n)
		}

		// Nobody reads another user's figures but an admin.
		if status, _, body := get(t, srv.URL+"/api/v1/storage/users/"+bob, aliceTok); status != 403 || !strings.Contains(string(body), "admin_required") {
			t.Fatalf("user reads another: %d %s", status, body)
		}
		status, _, body = get(t, srv.URL+"/api/v1/storage/users/"+bob, adminTok)
		var u storage.Usage
		if status != 200 || json.Unmarshal(body, &u) != nil || u.QuotaBytes != -1 || u.AvailableBytes != -1 {
			t.Fatalf("admin reads bob: %d %s", status, body)
		}
		if n := events(t, ob, db, "CHECK_STORAGE", admin); n != 1 {
			t.Fatalf("%d CHECK_STORAGE events by the admin", n)
		}
		if status, _, body := get(t, srv.URL+"/api/v1/storage/users/"+alice, adminTok); status != 200 || !strings.Contains(string(body), `"used_bytes":200`) {
			t.Fatalf("admin reads alice: %d %s", status, body)
		}

		// Anonymous, bad and expired tokens: 401.
		expired := iss.TokenAt(t, alice, authn.RoleUser, time.Now().Add(-time.Hour), 10*time.Minute)
		for _, tok := range []string{"", "garbage", expired} {
			status, hdr, body := get(t, srv.URL+"/api/v1/storage/me", tok)
			if status != 401 || hdr.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("token %q: %d %s", tok, status, body)
			}
		}
		// Bad input: 400.
		if status, _, body := get(t, srv.URL+"/api/v1/storage/users/not-a-uuid", adminTok); status != 400 || !strings.Contains(string(body), "invalid_user_id") {
			t.Fatalf("bad id: %d %s", status, body)
		}
		// An id no account has: 404, not an empty account's figures; and
		// 503 while the users service cannot say.
		if status, _, body := get(t, srv.URL+"/api/v1/storage/users/"+authntest.NewUserID(), adminTok); status != 404 || !strings.Contains(string(body), "user_not_found") {
			t.Fatalf("unknown id: %d %s", status, body)
		}
		dir.Fail(errs.ErrUnavailable)
		if status, hdr, body := get(t, srv.URL+"/api/v1/storage/users/"+alice, adminTok); status != 503 || hdr.Get("Retry-After") == "" {
			t.Fatalf("users down: %d %s", status, body)
		}
		dir.Fail(nil)
		// Internal routes want a service credential, not a user token.
		for _, tok := range []string{"", aliceTok, adminTok} {
			if status, _, body := get(t, srv.URL+"/internal/v1/storage/users/"+alice, tok); status != 401 {
				t.Fatalf("internal route with %q: %d %s", tok, status, body)
			}
		}
	}, storage.Migrations(), storage.MigrationTable)
}
