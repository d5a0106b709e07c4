package compat_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestUsersRoutes(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		adminID := e.register(t, "admin@example.com", true)
		otherID := e.register(t, "other@example.com", false)
		admin := e.login(t, "admin@example.com")

		// Register, then log in with the new account.
		r := call(t, e.url, req{method: "POST", path: "/api/users/register", body: map[string]string{"email": "Ann@Example.com", "password": "password-123", "username": "ann"}})
		expect(t, "register", r, 200, msg("User registered successfully"))
		r = call(t, e.url, req{method: "POST", path: "/api/users/login", body: map[string]string{"email": "ann@example.com", "password": "password-123"}})
		expect(t, "login", r, 200, nil)
		body := r.json(t)
		if keysOf(body) != "message,token" || body["message"] != "Login successful" {
			t.Fatalf("login answer %s", r.body)
		}
		ann := body["token"].(string)
		// The original client decodes the payload for id, email and exp.
		c := claims(t, ann)
		annID, _ := c["id"].(string)
		if annID == "" || c["email"] != "ann@example.com" || c["exp"] == nil || c["sub"] != annID {
			t.Fatalf("token claims %v", c)
		}

		cases := []struct {
			name   string
			q      req
			status int
			want   map[string]any
		}{
			{"register again", req{method: "POST", path: "/api/users/register", body: map[string]string{"email": "ann@example.com", "password": "password-456", "username": "x"}},
				400, msg("User already exists with this email")},
			{"register invalid", req{method: "POST", path: "/api/users/register", body: map[string]string{"email": "not-an-email", "password": "short", "username": "x"}},
				400, msgErr("Invalid input", "email: must be a valid email address; password: must have at least 8 characters")},
			{"register malformed", req{method: "POST", path: "/api/users/register", body: []byte(`{"email":`)},
				400, msgErr("Invalid request body", "the request body must be a JSON object")},
			{"register not json", req{method: "POST", path: "/api/users/register", body: []byte(`email=a`), header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
				400, msgErr("Invalid request body", "the request body must be application/json")},
			{"login wrong password", req{method: "POST", path: "/api/users/login", body: map[string]string{"email": "ann@example.com", "password": "wrong-password"}},
				400, msg("Invalid credentials")},
			{"login unknown email", req{method: "POST", path: "/api/users/login", body: map[string]string{"email": "nobody@example.com", "password": "password-123"}},
				400, msg("Invalid credentials")},
			{"login empty", req{method: "POST", path: "/api/users/login", body: map[string]string{}},
				400, msg("Invalid credentials")},
			{"user self", req{method: "GET", path: "/api/users/user/" + annID, token: ann}, 200, nil},
			{"user no token", req{method: "GET", path: "/api/users/user/" + annID}, 401, msg("Token not provided")},
			{"user bad token", req{method: "GET", path: "/api/users/user/" + annID, token: "not.a.token"}, 401, msg("Invalid or expired token")},
			{"user other's", req{method: "GET", path: "/api/users/user/" + otherID, token: ann}, 403, msg("Access denied. Admin role required.")},
			{"user by admin", req{method: "GET", path: "/api/users/user/" + otherID, token: admin}, 200, nil},
			{"user unknown", req{method: "GET", path: "/api/users/user/0191e7a4-0000-7000-8000-000000000000", token: admin}, 404, msg("User not found")},
			{"user not a uuid", req{method: "GET", path: "/api/users/user/42", token: admin}, 404, msg("User not found")},
		}
		for _, tc := range cases {
			r := call(t, e.url, tc.q)
			expect(t, tc.name, r, tc.status, tc.want)
			if tc.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: no WWW-Authenticate", tc.name)
			}
		}

		// The user row has exactly the original's fields.
		u := call(t, e.url, req{method: "GET", path: "/api/users/user/" + annID, token: ann}).json(t)["user"].(map[string]any)
		if keysOf(u) != "created_at,email,id,role,username" || u["id"] != annID || u["email"] != "ann@example.com" || u["username"] != "ann" || u["role"] != "user" {
			t.Fatalf("user row %v", u)
		}
		if _, err := time.Parse(time.RFC3339, u["created_at"].(string)); err != nil {
			t.Fatalf("created_at %v", u["created_at"])
		}
		a := call(t, e.url, req{method: "GET", path: "/api/users/user/" + adminID, token: admin}).json(t)["user"].(map[string]any)
		if a["role"] != "admin" {
			t.Fatalf("admin row %v", a)
		}

		// Without a username the account gets the original's default.
		r = call(t, e.url, req{method: "POST", path: "/api/users/register", body: map[string]string{"email": "nameless@example.com", "password": "password-123"}})
		expect(t, "register nameless", r, 200, msg("User registered successfully"))
		tok := e.login(t, "nameless@example.com")
		id := claims(t, tok)["id"].(string)
		u = call(t, e.url, req{method: "GET", path: "/api/users/user/" + id, token: tok}).json(t)["user"].(map[string]any)
		if u["username"] != "Default Username" {
			t.Fatalf("default username %v", u)
		}

		// Repeated failures are throttled with the original's shape.
		e.register(t, "target@example.com", false)
		var last reply
		for i := 0; i < 4; i++ {
			last = call(t, e.url, req{method: "POST", path: "/api/users/login", body: map[string]string{"email": "target@example.com", "password": "wrong-password"}})
		}
		expect(t, "throttled", last, http.StatusTooManyRequests, msg("Too many failed logins, try again later"))
		if last.header.Get("Retry-After") == "" {
			t.Fatal("throttled: no Retry-After")
		}
	})
}

// A token from the compatibility login works on the v1 API, and a v1 token
// on the compatibility routes.
func TestTokensWorkAcrossAPIs(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		id := e.register(t, "bo@example.com", false)
		compatToken := e.login(t, "bo@example.com")
		r := call(t, e.url, req{method: "GET", path: "/api/v1/users/me", token: compatToken})
		expect(t, "v1 me with compat token", r, 200, nil)
		if got := r.json(t)["user"].(map[string]any)["id"]; got != id {
			t.Fatalf("v1 me: %s", r.body)
		}

		r = call(t, e.url, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": "bo@example.com", "password": "password-123"}})
		expect(t, "v1 login", r, 200, nil)
		v1Token := r.json(t)["access_token"].(string)
		r = call(t, e.url, req{method: "GET", path: "/api/users/user/" + id, token: v1Token})
		expect(t, "compat user with v1 token", r, 200, nil)
		r = call(t, e.url, req{method: "GET", path: "/api/logs/user/" + id, token: v1Token})
		expect(t, "compat logs with v1 token", r, 200, nil)
	})
}
