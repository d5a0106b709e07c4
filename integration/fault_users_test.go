package integration

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestFaultUsersRestart: access tokens keep working on every other service
// while the users process restarts (they verify with the cached JWKS), and
// after it; tokens made before the restart still work on users itself.
func TestFaultUsersRestart(t *testing.T) {
	c := split(t)
	ann := c.client()
	ann.jsonDo("POST", "/api/v1/auth/register", map[string]string{"email": "ann@example.com", "password": "correct horse", "username": "ann"}, 201)
	pair := ann.jsonDo("POST", "/api/v1/auth/login", map[string]string{"email": "ann@example.com", "password": "correct horse"}, 200)
	ann.token = pair["access_token"].(string)
	// One path per service that verifies tokens itself.
	paths := []string{"/api/v1/videos/mine", "/api/v1/storage/me", "/api/v1/usage/me", "/api/v1/logs/me"}
	for _, p := range paths {
		ann.jsonDo("GET", p, nil, 200) // also fills each service's key cache
	}

	// Readers hammer the other services through the restart.
	var (
		mu       sync.Mutex
		failures []string
		rounds   int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &client{t: t, base: c.entry, token: ann.token, http: &http.Client{Timeout: 30 * time.Second}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, p := range paths {
					if a := cl.get(p); a.status != 200 {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("GET %s: %d %s", p, a.status, a.raw))
						mu.Unlock()
					}
				}
				mu.Lock()
				rounds++
				mu.Unlock()
			}
		}()
	}
	users := c.procs["users"]
	if err := users.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// While users is down: its routes answer 503, everyone else still
	// knows the token.
	wantUnavailable(t, c.client().do("POST", "/api/v1/auth/login", strings.NewReader(`{"email":"ann@example.com","password":"correct horse"}`),
		"Content-Type", "application/json"), "login while users is down")
	wantUnavailable(t, ann.do("GET", "/api/v1/users/me", nil), "users/me while users is down")
	mu.Lock()
	start := rounds
	mu.Unlock()
	eventually(t, 30*time.Second, func() string {
		mu.Lock()
		defer mu.Unlock()
		if rounds < start+3 {
			return "readers made no progress while users was down"
		}
		return ""
	})
	for _, p := range paths {
		ann.jsonDo("GET", p, nil, 200)
	}
	users.start()
	for _, p := range append(paths, "/api/v1/users/me") {
		ann.jsonDo("GET", p, nil, 200)
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d reads failed during the restart, e.g. %s", len(failures), rounds*len(paths), failures[0])
	}

	// After the restart: the refresh token from before still rotates, and
	// the new access token works everywhere.
	fresh := ann.jsonDo("POST", "/api/v1/auth/refresh", map[string]string{"refresh_token": pair["refresh_token"].(string)}, 200)
	ann.token = fresh["access_token"].(string)
	for _, p := range append(paths, "/api/v1/users/me") {
		ann.jsonDo("GET", p, nil, 200)
	}
}
