package users_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/reel-video/reel/internal/platform/errs"
)

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

// Storage and usage in other processes ask whether an account exists
// through the internal route, with a service credential.
func TestClientUserExists(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		srv, c := e.internal(t)

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
