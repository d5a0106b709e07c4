package compat_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/outbox"
)

// serviceToken returns a service credential signed with the test key, as
// an operator's script holding REEL_SERVICE_KEY would make one.
func serviceToken(t testing.TB, name string) string {
	t.Helper()
	k, err := authn.NewServiceKeys(serviceKey, name)
	must(t, err)
	tok, err := k.Token()
	must(t, err)
	return tok
}

func logRows(t testing.TB, r reply) ([]map[string]any, int) {
	t.Helper()
	m := r.json(t)
	if keysOf(m) != "logs,total" {
		t.Fatalf("logs answer %s", r.body)
	}
	raw, ok := m["logs"].([]any)
	if !ok {
		t.Fatalf("logs is not an array: %s", r.body)
	}
	rows := make([]map[string]any, len(raw))
	for i, v := range raw {
		rows[i] = v.(map[string]any)
		if k := keysOf(rows[i]); k != "action_type,created_at,description,id,service_name,user_id" {
			t.Fatalf("log row fields %s", k)
		}
	}
	return rows, int(m["total"].(float64))
}

func TestLogsRoutes(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.register(t, "admin@example.com", true)
		annID := e.register(t, "ann@example.com", false)
		admin := e.login(t, "admin@example.com")
		ann := e.login(t, "ann@example.com")
		svc := serviceToken(t, "scripts")
		subject := uuid.NewString() // a user with no other events

		line := map[string]any{"user_id": subject, "action": "UPLOAD_VIDEO", "description": "User uploaded a new video", "service": "VideoUploadService"}
		missing := msg("Invalid input: action, description, and service are required.")
		without := func(k string) map[string]any {
			m := map[string]any{}
			for kk, v := range line {
				if kk != k {
					m[kk] = v
				}
			}
			return m
		}
		cases := []struct {
			name   string
			q      req
			status int
			want   map[string]any
		}{
			{"add anonymous", req{method: "POST", path: "/api/logs/add", body: line}, 401, msg("A service credential is required")},
			{"add with a user token", req{method: "POST", path: "/api/logs/add", body: line, token: admin}, 401, msg("A service credential is required")},
			{"add forged credential", req{method: "POST", path: "/api/logs/add", body: line, token: forgedServiceToken(t)}, 401, msg("A service credential is required")},
			{"add without action", req{method: "POST", path: "/api/logs/add", body: without("action"), token: svc}, 400, missing},
			{"add without description", req{method: "POST", path: "/api/logs/add", body: without("description"), token: svc}, 400, missing},
			{"add without service", req{method: "POST", path: "/api/logs/add", body: without("service"), token: svc}, 400, missing},
			{"add blank action", req{method: "POST", path: "/api/logs/add", body: map[string]any{"action": " ", "description": "d", "service": "s"}, token: svc}, 400, missing},
			{"add action not a string", req{method: "POST", path: "/api/logs/add", body: map[string]any{"action": 7, "description": "d", "service": "s"}, token: svc}, 400, missing},
			{"add bad user_id", req{method: "POST", path: "/api/logs/add", body: map[string]any{"user_id": "42", "action": "A", "description": "d", "service": "s"}, token: svc},
				400, msgErr("Invalid input: user_id must be a UUID.", "user_id must be a UUID or null")},
			{"add malformed", req{method: "POST", path: "/api/logs/add", body: []byte(`[`), token: svc}, 400, msgErr("Invalid request body", "the request body must be a JSON object")},
			{"add", req{method: "POST", path: "/api/logs/add", body: line, token: svc}, 201, msg("Log added successfully")},
			{"add without user", req{method: "POST", path: "/api/logs/add", body: without("user_id"), token: svc}, 201, msg("Log added successfully")},
			{"all no token", req{method: "GET", path: "/api/logs/all"}, 401, msg("Token not provided")},
			{"all bad token", req{method: "GET", path: "/api/logs/all", token: "x.y.z"}, 401, msg("Invalid or expired token")},
			{"all by a user", req{method: "GET", path: "/api/logs/all", token: ann}, 403, msg("Access denied. Admin role required.")},
			{"all by admin", req{method: "GET", path: "/api/logs/all", token: admin}, 200, nil},
			{"all start negative", req{method: "GET", path: "/api/logs/all?start=-1", token: admin}, 400, msgErr("Invalid start value", "start must be a whole number of at least 0")},
			{"all start text", req{method: "GET", path: "/api/logs/all?start=abc", token: admin}, 400, msgErr("Invalid start value", "start must be a whole number of at least 0")},
			{"all start fraction", req{method: "GET", path: "/api/logs/all?start=1.5", token: admin}, 400, msgErr("Invalid start value", "start must be a whole number of at least 0")},
			{"all start huge", req{method: "GET", path: "/api/logs/all?start=99999999999999999999", token: admin}, 400, msgErr("Invalid start value", "start must be a whole number of at least 0")},
			{"user no token", req{method: "GET", path: "/api/logs/user/" + annID}, 401, msg("Token not provided")},
			{"user own", req{method: "GET", path: "/api/logs/user/" + annID, token: ann}, 200, nil},
			{"user other's", req{method: "GET", path: "/api/logs/user/" + subject, token: ann}, 403, msg("Access denied. Admin role required.")},
			{"user by admin", req{method: "GET", path: "/api/logs/user/" + annID, token: admin}, 200, nil},
			{"user not a uuid", req{method: "GET", path: "/api/logs/user/42", token: admin}, 400, msgErr("Failed to fetch logs", "user_id must be a UUID")},
			{"user start bad", req{method: "GET", path: "/api/logs/user/" + annID + "?start=x", token: ann}, 400, msgErr("Invalid start value", "start must be a whole number of at least 0")},
		}
		for _, tc := range cases {
			expect(t, tc.name, call(t, e.url, tc.q), tc.status, tc.want)
		}

		// The added line reads back with the original's names, and is in
		// reel's activity log under reel's names.
		rows, total := logRows(t, call(t, e.url, req{method: "GET", path: "/api/logs/user/" + subject, token: admin}))
		if total != 1 || len(rows) != 1 {
			t.Fatalf("added line: total %d, %v", total, rows)
		}
		row := rows[0]
		if row["user_id"] != subject || row["action_type"] != "UPLOAD_VIDEO" || row["service_name"] != "VideoUploadService" || row["description"] != "User uploaded a new video" {
			t.Fatalf("added row %v", row)
		}
		v1 := call(t, e.url, req{method: "GET", path: "/api/v1/logs?user_id=" + subject, token: admin}).json(t)
		ev := v1["items"].([]any)[0].(map[string]any)
		if ev["service"] != "videos" || ev["action"] != "UPLOAD_VIDEO" || ev["outcome"] != "success" || ev["id"] != row["id"] {
			t.Fatalf("v1 event %v", ev)
		}
		// A free-form action keeps its text for the original's clients;
		// an "Error…" description is a failure for reel.
		other := uuid.NewString()
		expect(t, "add free-form", call(t, e.url, req{method: "POST", path: "/api/logs/add", token: svc,
			body: map[string]any{"user_id": other, "action": "fetch user videos", "description": "Error: boom", "service": "MyScript"}}), 201, nil)
		rows, _ = logRows(t, call(t, e.url, req{method: "GET", path: "/api/logs/user/" + other, token: admin}))
		if rows[0]["action_type"] != "fetch user videos" || rows[0]["service_name"] != "MyScript" {
			t.Fatalf("free-form row %v", rows[0])
		}
		ev = call(t, e.url, req{method: "GET", path: "/api/v1/logs?user_id=" + other, token: admin}).json(t)["items"].([]any)[0].(map[string]any)
		if ev["service"] != "external" || ev["action"] != "FETCH_USER_VIDEOS" || ev["outcome"] != "failure" {
			t.Fatalf("v1 free-form event %v", ev)
		}

		// The users service's own events reach the log through its outbox
		// and read as the original's UserAccountService.
		eventually(t, "ann's login event", func() bool {
			rows, _ := logRows(t, call(t, e.url, req{method: "GET", path: "/api/logs/user/" + annID, token: ann}))
			for _, r := range rows {
				if r["action_type"] == "LOGIN" && r["service_name"] == "UserAccountService" && r["user_id"] == annID {
					return true
				}
			}
			return false
		})
		// /all holds everyone's lines.
		rows, total = logRows(t, call(t, e.url, req{method: "GET", path: "/api/logs/all", token: admin}))
		if total < 4 || len(rows) != total {
			t.Fatalf("all: total %d, %d rows", total, len(rows))
		}
	})
}

// forgedServiceToken is a service credential signed with another key.
func forgedServiceToken(t testing.TB) string {
	t.Helper()
	k, err := authn.NewServiceKeys("another-key-another-key-another-key", "scripts")
	must(t, err)
	tok, err := k.Token()
	must(t, err)
	return tok
}

func TestLogsPagination(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.register(t, "admin@example.com", true)
		admin := e.login(t, "admin@example.com")
		subject := uuid.NewString()
		const n = 130
		base := time.Now().Add(-time.Hour).UTC()
		events := make([]outbox.Event, n)
		for i := range events {
			ev := outbox.NewEvent(context.Background(), "videos", "FETCH_VIDEOS", outbox.Success, "page "+strconv.Itoa(i)).ForUser(subject)
			ev.OccurredAt = base.Add(time.Duration(i) * time.Second)
			events[i] = ev
		}
		must(t, e.logs.Ingest(context.Background(), events))

		seen := map[string]bool{}
		var prev time.Time
		for _, p := range []struct{ start, rows int }{{0, 100}, {100, 30}, {130, 0}, {1000, 0}} {
			r := call(t, e.url, req{method: "GET", path: fmt.Sprintf("/api/logs/user/%s?start=%d", subject, p.start), token: admin})
			expect(t, "page", r, 200, nil)
			rows, total := logRows(t, r)
			if total != n || len(rows) != p.rows {
				t.Fatalf("start=%d: total %d, %d rows", p.start, total, len(rows))
			}
			for i, row := range rows {
				at, err := time.Parse(time.RFC3339Nano, row["created_at"].(string))
				must(t, err)
				if !prev.IsZero() && !at.Before(prev) {
					t.Fatalf("start=%d row %d: not newest first", p.start, i)
				}
				prev = at
				if seen[row["id"].(string)] {
					t.Fatalf("start=%d: row repeated", p.start)
				}
				seen[row["id"].(string)] = true
			}
			if p.start == 0 && rows[0]["description"] != "page 129" {
				t.Fatalf("first row %v", rows[0])
			}
		}
		if len(seen) != n {
			t.Fatalf("%d distinct rows over the pages, want %d", len(seen), n)
		}
	})
}

func TestLogsServiceNames(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.register(t, "admin@example.com", true)
		admin := e.login(t, "admin@example.com")
		subject := uuid.NewString()
		want := []struct{ service, action, name string }{
			{"users", "REGISTER", "UserAccountService"},
			{"users", "LOGIN", "UserAccountService"},
			{"videos", "UPLOAD_VIDEO", "VideoUploadService"},
			{"videos", "QUOTA_EXCEEDED", "VideoUploadService"},
			{"videos", "FETCH_VIDEOS", "VideoFetchService"},
			{"videos", "STREAM_VIDEO", "VideoStreamService"},
			{"videos", "DELETE_VIDEO", "VideoDeleteService"},
			{"videos", "DELETE_ALL_VIDEOS", "VideoDeleteService"},
			{"videos", "RESTORE_VIDEO", "VideoDeleteService"},
			{"storage", "CHECK_STORAGE", "StorageManagementService"},
			{"usage", "CHECK_BANDWIDTH", "UsageMonitoringService"},
		}
		var events []outbox.Event
		for _, w := range want {
			events = append(events, outbox.NewEvent(context.Background(), w.service, w.action, outbox.Success, w.service+" "+w.action).ForUser(subject))
		}
		must(t, e.logs.Ingest(context.Background(), events))
		rows, total := logRows(t, call(t, e.url, req{method: "GET", path: "/api/logs/user/" + subject, token: admin}))
		if total != len(want) {
			t.Fatalf("total %d", total)
		}
		got := map[string]string{}
		for _, r := range rows {
			got[r["description"].(string)] = r["service_name"].(string)
		}
		for _, w := range want {
			if g := got[w.service+" "+w.action]; g != w.name {
				t.Errorf("%s %s: service_name %q, want %q", w.service, w.action, g, w.name)
			}
		}
	})
}
