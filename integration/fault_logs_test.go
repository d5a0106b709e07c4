package integration

import (
	"fmt"
	"net/url"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/sqldb"
)

// TestFaultLogsDown: with the logs process gone, every service keeps
// working and its activity events wait in its outbox; once logs is back
// each event arrives exactly once.
func TestFaultLogsDown(t *testing.T) {
	c := split(t)
	file := makeVideo(t, 1)

	admin := c.client()
	admin.login(adminEmail, adminPassword, false)
	ann := c.client()
	// want maps the request ids the test sends to the actions of the
	// events each must produce.
	want := map[string][]string{}
	rid := func(name string, actions ...string) string {
		id := "fault-logs-" + name + "-" + randomKey()[:8]
		want[id] = actions
		return id
	}
	if a := ann.doJSON(rid("register-ann", "REGISTER"), "POST", "/api/v1/auth/register",
		map[string]string{"email": "ann@example.com", "password": "correct horse", "username": "ann"}); a.status != 201 {
		t.Fatalf("register: %d %s", a.status, a.raw)
	}
	ann.loginID(rid("login-ann", "LOGIN"), "ann@example.com", "correct horse")

	// SIGKILL: the relays lose their peer without notice, as in a crash.
	logs := c.procs["logs"]
	_ = logs.stop(syscall.SIGKILL)

	// The logs API itself answers 503 through the gateway.
	wantUnavailable(t, admin.do("GET", "/api/v1/logs", nil), "logs down")

	// Act on every service while logs is down.
	ann.loginID(rid("login-again", "LOGIN"), "ann@example.com", "correct horse")
	if a := ann.doJSON(rid("login-bad", "LOGIN"), "POST", "/api/v1/auth/login",
		map[string]string{"email": "ann@example.com", "password": "wrong password"}); a.status != 401 {
		t.Fatalf("bad login: %d %s", a.status, a.raw)
	}
	bob := c.client()
	if a := bob.doJSON(rid("register-bob", "REGISTER"), "POST", "/api/v1/auth/register",
		map[string]string{"email": "bob@example.com", "password": "correct horse", "username": "bob"}); a.status != 201 {
		t.Fatalf("register bob: %d %s", a.status, a.raw)
	}
	body, ctype := multipartBody(t, file, "while logs is down")
	up := ann.do("POST", "/api/v1/videos", body, "Content-Type", ctype, "X-Request-ID", rid("upload", "UPLOAD_VIDEO"))
	if up.status != 201 {
		t.Fatalf("upload: %d %s", up.status, up.raw)
	}
	id := up.json(t)["video"].(map[string]any)["id"].(string)
	steps := []struct {
		name, method, path string
		body               any
		status             int
		action             string
	}{
		{"feed", "GET", "/api/v1/videos", nil, 200, "FETCH_VIDEOS"},
		{"storage", "GET", "/api/v1/storage/me", nil, 200, "CHECK_STORAGE"},
		{"usage", "GET", "/api/v1/usage/me", nil, 200, "CHECK_BANDWIDTH"},
		{"playback", "POST", "/api/v1/videos/" + id + "/playback", nil, 200, "STREAM_VIDEO"},
		{"update", "PATCH", "/api/v1/videos/" + id, map[string]string{"title": "renamed"}, 200, "UPDATE_VIDEO"},
		{"delete", "DELETE", "/api/v1/videos/" + id, nil, 204, "DELETE_VIDEO"},
		{"restore", "POST", "/api/v1/videos/" + id + "/restore", nil, 200, "RESTORE_VIDEO"},
	}
	for _, s := range steps {
		if a := ann.doJSON(rid(s.name, s.action), s.method, s.path, s.body); a.status != s.status {
			t.Fatalf("%s: %d %s", s.name, a.status, a.raw)
		}
	}

	// Every service with an outbox has tried to deliver and failed, and
	// holds its events.
	dbs := map[string]*sqldb.DB{}
	for _, svc := range []string{"users", "videos", "storage", "usage"} {
		dbs[svc] = openDB(t, c.procs[svc])
	}
	eventually(t, 60*time.Second, func() string {
		for svc := range dbs {
			if n := metric(t, c.procs[svc], "reel_outbox_failed_deliveries_total", svc+"_outbox"); n < 1 {
				return svc + ": no failed delivery yet"
			}
			if n := count(t, dbs[svc], "SELECT COUNT(*) FROM "+svc+"_outbox"); n == 0 {
				return svc + ": outbox empty while logs is down"
			}
		}
		return ""
	})

	logs.start()

	// Every outbox drains, and then the log holds each event once.
	eventually(t, 90*time.Second, func() string {
		for svc, db := range dbs {
			if n := count(t, db, "SELECT COUNT(*) FROM "+svc+"_outbox"); n != 0 {
				return fmt.Sprintf("%s: %d events still in the outbox", svc, n)
			}
		}
		return ""
	})
	got := map[string][]string{}
	seen := map[string]bool{}
	cursor := ""
	for {
		path := "/api/v1/logs?limit=1000"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		page := admin.jsonDo("GET", path, nil, 200)
		for _, it := range page["items"].([]any) {
			ev := it.(map[string]any)
			eid := ev["id"].(string)
			if seen[eid] {
				t.Fatalf("event %s listed twice: %v", eid, ev)
			}
			seen[eid] = true
			if r, _ := ev["request_id"].(string); want[r] != nil {
				got[r] = append(got[r], ev["action"].(string))
			}
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	for r, actions := range want {
		g := slices.Clone(got[r])
		slices.Sort(g)
		slices.Sort(actions)
		if !slices.Equal(g, actions) {
			t.Errorf("request %s: events %v, want exactly %v", r, g, actions)
		}
	}
}
