package users_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/users"
)

// The public session routes act on the caller's own sessions only.
func TestSessionRoutes(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		a := e.account("sam@example.com")
		b := e.login("sam@example.com", "correct horse")
		other := e.account("tom@example.com")
		tok := a.str("access_token")

		expect(t, e.do("GET", "/api/v1/users/me/sessions", "", nil), 401, "")
		list := e.do("GET", "/api/v1/users/me/sessions", tok, nil)
		expect(t, list, 200, "")
		items, _ := list.body["items"].([]any)
		if len(items) != 2 {
			t.Fatalf("sessions: %s", list.raw)
		}
		first := items[0].(map[string]any)
		for _, k := range []string{"id", "started_at", "last_used_at", "expires_at"} {
			if first[k] == nil {
				t.Fatalf("session lacks %s: %s", k, list.raw)
			}
		}
		otherSessions := e.do("GET", "/api/v1/users/me/sessions", other.str("access_token"), nil)
		otherID := otherSessions.body["items"].([]any)[0].(map[string]any)["id"].(string)
		// Someone else's session is not found, and stays live.
		expect(t, e.do("DELETE", "/api/v1/users/me/sessions/"+otherID, tok, nil), 404, "session_not_found")
		expect(t, e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": other.str("refresh_token")}), 200, "")

		id := first["id"].(string)
		expect(t, e.do("DELETE", "/api/v1/users/me/sessions/"+id, tok, nil), 204, "")
		expect(t, e.do("DELETE", "/api/v1/users/me/sessions/"+id, tok, nil), 404, "session_not_found")

		c := e.login("sam@example.com", "correct horse")
		expect(t, e.do("POST", "/api/v1/users/me/sessions/revoke-others", tok, map[string]string{"refresh_token": "nonsense"}), 401, "invalid_refresh_token")
		expect(t, e.do("POST", "/api/v1/users/me/sessions/revoke-others", tok, map[string]string{"refresh_token": other.str("refresh_token")}), 401, "invalid_refresh_token")
		expect(t, e.do("POST", "/api/v1/users/me/sessions/revoke-others", tok, `{"refresh_token":`), 400, "")
		r := e.do("POST", "/api/v1/users/me/sessions/revoke-others", tok, map[string]string{"refresh_token": c.str("refresh_token")})
		expect(t, r, 200, "")
		if n, _ := r.body["revoked"].(float64); n != 1 {
			t.Fatalf("revoked: %s", r.raw)
		}
		// b's session is gone, c's is the one left.
		expect(t, e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": b.str("refresh_token")}), 401, "invalid_refresh_token")
		expect(t, e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": c.str("refresh_token")}), 200, "")
	})
}

// The admin list takes a search text.
func TestListUsersSearch(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		e.account("ann@example.com")
		e.account("bob@example.org")
		admin := e.makeAdmin("ann@example.com")
		r := e.do("GET", "/api/v1/users?q=EXAMPLE.ORG", admin, nil)
		expect(t, r, 200, "")
		if items := r.body["items"].([]any); len(items) != 1 || items[0].(map[string]any)["email"] != "bob@example.org" {
			t.Fatalf("search: %s", r.raw)
		}
		r = e.do("GET", "/api/v1/users", admin, nil)
		if items := r.body["items"].([]any); len(items) != 2 {
			t.Fatalf("no search: %s", r.raw)
		}
		expect(t, e.do("GET", "/api/v1/users?q=%00", admin, nil), 422, "validation_failed")
	})
}

// The gateway's web app looks up owners' names and runs the first-run
// setup through internal routes, with a service credential.
// internal serves e's internal routes, as to another process, and returns
// their server and a client of them.
func (e *env) internal(t *testing.T) (*httptest.Server, *users.Client) {
	t.Helper()
	const key = "a service key of at least 32 characters"
	provider, err := authn.NewServiceKeys(key, "users")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	users.NewHandler(e.svc, authn.NewVerifier(e.svc)).InternalRoutes(mux, provider)
	srv := httptest.NewServer(httpx.Wrap(mux, httpx.MiddlewareConfig{Logger: obs.Discard()}))
	t.Cleanup(srv.Close)
	caller, err := authn.NewServiceKeys(key, "gateway")
	if err != nil {
		t.Fatal(err)
	}
	return srv, users.NewClient(srv.URL, caller, nil)
}

func TestClientWebLookups(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		srv, c := e.internal(t)
		ctx := t.Context()

		ok, err := c.HasAdmin(ctx)
		if err != nil || ok {
			t.Fatalf("has admin, empty: %v %v", ok, err)
		}
		_, err = c.CreateFirstAdmin(ctx, users.RegisterInput{Email: "boss", Password: "short", Username: "boss"})
		if e, ok := errs.As(err); !ok || !errors.Is(err, users.ErrValidation) || e.Fields["email"] == "" || e.Fields["password"] == "" {
			t.Fatalf("invalid admin: %v", err)
		}
		boss, err := c.CreateFirstAdmin(ctx, users.RegisterInput{Email: "boss@example.com", Password: "correct horse", Username: "Boss"})
		if err != nil || boss.Role != authn.RoleAdmin || boss.Email != "boss@example.com" {
			t.Fatalf("first admin: %+v %v", boss, err)
		}
		if ok, err := c.HasAdmin(ctx); err != nil || !ok {
			t.Fatalf("has admin: %v %v", ok, err)
		}
		if _, err := c.CreateFirstAdmin(ctx, users.RegisterInput{Email: "second@example.com", Password: "correct horse", Username: "x"}); !errors.Is(err, users.ErrAdminExists) {
			t.Fatalf("second admin: %v", err)
		}

		ann := e.account("ann@example.com")
		annID := ann.body["user"].(map[string]any)["id"].(string)
		names, err := c.Names(ctx, []string{annID, boss.ID, annID, "00000000-0000-0000-0000-000000000000", "not-an-id", "' OR 1=1 --"})
		if err != nil || len(names) != 2 || names[annID] != "someone" || names[boss.ID] != "Boss" {
			t.Fatalf("names: %v %v", names, err)
		}
		if names, err := c.Names(ctx, nil); err != nil || len(names) != 0 {
			t.Fatalf("no ids: %v %v", names, err)
		}
		many := make([]string, users.MaxNames+1)
		for i := range many {
			many[i] = fmt.Sprintf("00000000-0000-0000-0000-%012d", i)
		}
		if _, err := e.svc.Names(ctx, many); !errors.Is(err, users.ErrTooManyNames) {
			t.Fatalf("too many ids: %v", err)
		}
		// A user's token is not a service credential.
		req, _ := http.NewRequest("GET", srv.URL+"/internal/v1/admin", nil)
		req.Header.Set("Authorization", "Bearer "+ann.str("access_token"))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != 401 {
			t.Fatalf("user token on the internal route: %d", res.StatusCode)
		}
	})
}
