package logs_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/logs"
	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/authn/authntest"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

const serviceKey = "0123456789abcdef0123456789abcdef-test"

// server is the logs service behind a real socket.
type server struct {
	svc    *logs.Service
	db     *sqldb.DB
	url    string
	issuer *authntest.Issuer
	// down, when positive, makes the next requests fail with 503 (a logs
	// service that is restarting).
	down atomic.Int64
}

func servers(t *testing.T, fn func(t *testing.T, s *server)) {
	t.Helper()
	engines(t, func(t *testing.T, svc *logs.Service, db *sqldb.DB) {
		s := &server{svc: svc, db: db, issuer: authntest.New(t)}
		keys, err := authn.NewServiceKeys(serviceKey, "logs")
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		h := logs.NewHandler(svc, s.issuer.Verifier())
		h.Routes(mux)
		h.InternalRoutes(mux, keys)
		var handler http.Handler = httpx.Wrap(mux, httpx.MiddlewareConfig{Logger: obs.Discard()})
		inner := handler
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s.down.Add(-1) >= 0 {
				http.Error(w, "restarting", http.StatusServiceUnavailable)
				return
			}
			inner.ServeHTTP(w, r)
		})
		ts := httptest.NewServer(handler)
		t.Cleanup(ts.Close)
		s.url = ts.URL
		fn(t, s)
	})
}

// get does a GET with an optional bearer token and returns status and body.
func (s *server) get(t *testing.T, path, token string) (int, http.Header, []byte) {
	t.Helper()
	return s.do(t, http.MethodGet, path, token, nil)
}

func (s *server) do(t *testing.T, method, path, token string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
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

func decodePage(t *testing.T, b []byte) page.Page[outbox.Event] {
	t.Helper()
	var p page.Page[outbox.Event]
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("decode page: %v: %s", err, b)
	}
	return p
}

func problemCode(t *testing.T, h http.Header, b []byte) string {
	t.Helper()
	if ct := h.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("error content type %q", ct)
	}
	var p httpx.Problem
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("decode problem: %v: %s", err, b)
	}
	return p.Code
}

func TestAuthorization(t *testing.T) {
	servers(t, func(t *testing.T, s *server) {
		alice, bob := uuid.NewString(), uuid.NewString()
		ingest(t, s.svc,
			ev(alice, "LOGIN", outbox.Success, "alice in", base),
			ev(alice, "LOGOUT", outbox.Success, "alice out", base.Add(time.Second)),
			ev(bob, "LOGIN", outbox.Success, "bob in", base.Add(2*time.Second)),
			ev("", "LOGIN", outbox.Failure, "someone failed", base.Add(3*time.Second)),
		)
		aliceTok := s.issuer.Token(t, alice, authn.RoleUser)
		adminTok := s.issuer.Token(t, uuid.NewString(), authn.RoleAdmin)

		for _, path := range []string{"/api/v1/logs", "/api/v1/logs/me", "/api/v1/logs/export?format=csv"} {
			if code, _, _ := s.get(t, path, ""); code != http.StatusUnauthorized {
				t.Errorf("anonymous %s: %d, want 401", path, code)
			}
			if code, _, _ := s.get(t, path, "not-a-token"); code != http.StatusUnauthorized {
				t.Errorf("garbage token %s: %d, want 401", path, code)
			}
		}
		for _, path := range []string{"/api/v1/logs", "/api/v1/logs?user_id=" + alice, "/api/v1/logs/export"} {
			code, h, b := s.get(t, path, aliceTok)
			if code != http.StatusForbidden || problemCode(t, h, b) != "admin_required" {
				t.Errorf("user on %s: %d %s, want 403", path, code, b)
			}
		}

		code, _, b := s.get(t, "/api/v1/logs/me", aliceTok)
		if code != http.StatusOK {
			t.Fatalf("/me: %d %s", code, b)
		}
		p := decodePage(t, b)
		if len(p.Items) != 2 || p.Items[0].Description != "alice out" || p.Items[1].Description != "alice in" || p.NextCursor != nil {
			t.Errorf("alice sees %+v, want her two events", p.Items)
		}
		// Filters still apply to one's own events; another user cannot be asked for.
		if _, _, b := s.get(t, "/api/v1/logs/me?action=LOGOUT", aliceTok); len(decodePage(t, b).Items) != 1 {
			t.Errorf("/me?action=LOGOUT: %s", b)
		}
		if code, h, b := s.get(t, "/api/v1/logs/me?user_id="+bob, aliceTok); code != http.StatusBadRequest || problemCode(t, h, b) != "invalid_query" {
			t.Errorf("/me?user_id=bob: %d %s, want 400", code, b)
		}

		code, _, b = s.get(t, "/api/v1/logs", adminTok)
		if code != http.StatusOK || len(decodePage(t, b).Items) != 4 {
			t.Errorf("admin sees %d %s, want all 4", code, b)
		}
		if _, _, b := s.get(t, "/api/v1/logs?user_id="+bob, adminTok); len(decodePage(t, b).Items) != 1 {
			t.Errorf("admin filter by user: %s", b)
		}

		// No public route writes an event.
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
			if code, _, _ := s.do(t, m, "/api/v1/logs", adminTok, []byte(`{}`)); code != http.StatusMethodNotAllowed {
				t.Errorf("%s /api/v1/logs: %d, want 405", m, code)
			}
		}
	})
}

func TestBadQueries(t *testing.T) {
	servers(t, func(t *testing.T, s *server) {
		var events []outbox.Event
		for i := range 1100 {
			events = append(events, ev(uuid.NewString(), "LOGIN", outbox.Success, "e", base.Add(time.Duration(i)*time.Millisecond)))
		}
		ingest(t, s.svc, events...)
		admin := s.issuer.Token(t, uuid.NewString(), authn.RoleAdmin)
		for query, code := range map[string]string{
			"since=yesterday":            "invalid_time",
			"until=2024-13-01T00:00:00Z": "invalid_time",
			"since=2024-05-01":           "invalid_time",
			"since=2024-05-02T00:00:00Z&until=2024-05-01T00:00:00Z": "invalid_time_range",
			"cursor=%21%21":                 "invalid_cursor",
			"cursor=bm90LWEtY3Vyc29y":       "invalid_cursor",
			"limit=0":                       "invalid_limit",
			"limit=-5":                      "invalid_limit",
			"limit=ten":                     "invalid_limit",
			"user_id=bob":                   "invalid_user_id",
			"action=login":                  "invalid_action",
			"service=Users":                 "invalid_service",
			"outcome=maybe":                 "invalid_outcome",
			"q=" + strings.Repeat("x", 201): "invalid_q",
		} {
			status, h, b := s.get(t, "/api/v1/logs?"+query, admin)
			if status != http.StatusBadRequest || problemCode(t, h, b) != code {
				t.Errorf("?%s: %d %.200s, want 400 %s", query, status, b, code)
			}
		}
		if status, h, b := s.get(t, "/api/v1/logs/export?format=xml", admin); status != http.StatusBadRequest || problemCode(t, h, b) != "invalid_format" {
			t.Errorf("format=xml: %d %s", status, b)
		}
		if status, h, b := s.get(t, "/api/v1/logs/export?since=soon", admin); status != http.StatusBadRequest || problemCode(t, h, b) != "invalid_time" {
			t.Errorf("export since=soon: %d %s", status, b)
		}

		// Well-formed unknown actions are accepted and match nothing, as
		// ingest accepts any well-formed action.
		if status, _, b := s.get(t, "/api/v1/logs?action=NOT_AN_ACTION_YET", admin); status != http.StatusOK || len(decodePage(t, b).Items) != 0 {
			t.Errorf("unknown action: %d %s", status, b)
		}
		// Limits: default 100, capped at 1000.
		if _, _, b := s.get(t, "/api/v1/logs", admin); len(decodePage(t, b).Items) != 100 {
			t.Errorf("default page size is not 100")
		}
		_, _, b := s.get(t, "/api/v1/logs?limit=5000", admin)
		if p := decodePage(t, b); len(p.Items) != 1000 || p.NextCursor == nil {
			t.Errorf("limit=5000 gave %d items, want 1000 and a next cursor", len(p.Items))
		}
		// A cursor walks the rest.
		p := decodePage(t, b)
		_, _, b = s.get(t, "/api/v1/logs?limit=1000&cursor="+url.QueryEscape(*p.NextCursor), admin)
		if p := decodePage(t, b); len(p.Items) != 100 || p.NextCursor != nil {
			t.Errorf("second page has %d items, want the last 100", len(p.Items))
		}
	})
}

func TestExportFormats(t *testing.T) {
	servers(t, func(t *testing.T, s *server) {
		user := uuid.NewString()
		var events []outbox.Event
		for i := range 1234 {
			e := ev(user, "UPLOAD_VIDEO", outbox.Success, fmt.Sprintf("uploaded \"clip %d\", ok\nline two", i), base.Add(time.Duration(i)*time.Second))
			e = e.On(uuid.NewString()).With("size_bytes", i*1000)
			events = append(events, e)
		}
		evil := ev("", "LOGIN", outbox.Failure, "=HYPERLINK(\"http://evil\")", base.Add(-time.Hour))
		evil.UserAgent = "@SUM(1+1)"
		events = append(events, evil)
		ingest(t, s.svc, events...)
		admin := s.issuer.Token(t, uuid.NewString(), authn.RoleAdmin)

		want := all(t, s.svc, logs.Filter{}, 1000) // newest first

		code, h, b := s.get(t, "/api/v1/logs/export?format=ndjson", admin)
		if code != http.StatusOK {
			t.Fatalf("ndjson: %d %s", code, b)
		}
		if ct := h.Get("Content-Type"); ct != "application/x-ndjson" {
			t.Errorf("ndjson content type %q", ct)
		}
		if cd := h.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment; filename=\"reel-activity-") || !strings.HasSuffix(cd, ".ndjson\"") {
			t.Errorf("ndjson disposition %q", cd)
		}
		var got []outbox.Event
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e outbox.Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("ndjson line %d: %v", len(got), err)
			}
			got = append(got, e)
		}
		if len(got) != len(want) {
			t.Fatalf("ndjson has %d events, want %d", len(got), len(want))
		}
		for i := range want {
			wj, _ := json.Marshal(want[i])
			gj, _ := json.Marshal(got[i])
			if !bytes.Equal(wj, gj) {
				t.Fatalf("ndjson event %d:\n got %s\nwant %s", i, gj, wj)
			}
		}

		code, h, b = s.get(t, "/api/v1/logs/export?format=csv&user_id="+user+"&since="+url.QueryEscape(base.Add(1000*time.Second).Format(time.RFC3339)), admin)
		if code != http.StatusOK {
			t.Fatalf("csv: %d %s", code, b)
		}
		if ct := h.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
			t.Errorf("csv content type %q", ct)
		}
		if cd := h.Get("Content-Disposition"); !strings.HasSuffix(cd, ".csv\"") {
			t.Errorf("csv disposition %q", cd)
		}
		recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
		if err != nil {
			t.Fatalf("parse csv: %v", err)
		}
		header := "id,occurred_at,user_id,action,service,outcome,description,target_id,request_id,ip,user_agent,metadata"
		if strings.Join(recs[0], ",") != header {
			t.Errorf("csv header %v", recs[0])
		}
		if len(recs) != 1+234 {
			t.Fatalf("csv has %d rows, want 234 events since the filter time", len(recs)-1)
		}
		first := want[0] // the newest event: the last upload
		r := recs[1]
		at, err := time.Parse(time.RFC3339Nano, r[1])
		if r[0] != first.ID || err != nil || !at.Equal(first.OccurredAt) || r[2] != user || r[3] != "UPLOAD_VIDEO" ||
			r[6] != first.Description || r[7] != *first.TargetID || r[10] != "test/1.0" {
			t.Errorf("csv row %v\nwant %+v", r, first)
		}
		var meta map[string]any
		if err := json.Unmarshal([]byte(r[11]), &meta); err != nil || meta["size_bytes"] != float64(1233000) {
			t.Errorf("csv metadata %q", r[11])
		}

		// Cells that a spreadsheet would run as formulas are defused.
		_, _, b = s.get(t, "/api/v1/logs/export?format=csv&outcome=failure", admin)
		recs, err = csv.NewReader(bytes.NewReader(b)).ReadAll()
		if err != nil || len(recs) != 2 {
			t.Fatalf("csv failures: %v %d", err, len(recs))
		}
		if recs[1][6] != "'=HYPERLINK(\"http://evil\")" || recs[1][10] != "'@SUM(1+1)" {
			t.Errorf("formula cells not defused: %q %q", recs[1][6], recs[1][10])
		}

		// An empty result is still a file: the CSV header alone.
		code, _, b = s.get(t, "/api/v1/logs/export?format=csv&action=NOTHING", admin)
		if code != http.StatusOK || strings.TrimSpace(string(b)) != header {
			t.Errorf("empty csv export: %d %q", code, b)
		}
	})
}

func TestInternalIngestRoute(t *testing.T) {
	servers(t, func(t *testing.T, s *server) {
		batch := func(events ...outbox.Event) []byte {
			b, _ := json.Marshal(logs.Batch{Events: events})
			return b
		}
		e := ev(uuid.NewString(), "LOGIN", outbox.Success, "via http", base)
		body := batch(e)
		videos, _ := authn.NewServiceKeys(serviceKey, "videos")
		good, _ := videos.Token()
		forger, _ := authn.NewServiceKeys(strings.Repeat("x", 40), "videos")
		forged, _ := forger.Token()

		for name, tok := range map[string]string{
			"no credential": "",
			"forged":        forged,
			"user token":    s.issuer.Token(t, uuid.NewString(), authn.RoleAdmin),
		} {
			code, h, b := s.do(t, http.MethodPost, "/internal/v1/logs/events", tok, body)
			if code != http.StatusUnauthorized || problemCode(t, h, b) != "invalid_service_credential" {
				t.Errorf("%s: %d %s, want 401", name, code, b)
			}
		}
		if n := count(t, s.db); n != 0 {
			t.Fatalf("refused requests stored %d events", n)
		}

		code, _, b := s.do(t, http.MethodPost, "/internal/v1/logs/events", good, body)
		if code != http.StatusNoContent {
			t.Fatalf("good credential: %d %s", code, b)
		}
		// Redelivery is harmless.
		if code, _, b := s.do(t, http.MethodPost, "/internal/v1/logs/events", good, body); code != http.StatusNoContent {
			t.Fatalf("redelivery: %d %s", code, b)
		}
		if n := count(t, s.db); n != 1 {
			t.Errorf("%d events stored, want 1", n)
		}

		if code, _, _ := s.do(t, http.MethodPost, "/internal/v1/logs/events", good, []byte(`{"events":[`)); code != http.StatusBadRequest {
			t.Errorf("malformed: %d", code)
		}
		bad := e
		bad.ID, bad.Outcome = uuid.NewString(), "meh"
		if code, _, _ := s.do(t, http.MethodPost, "/internal/v1/logs/events", good, batch(bad)); code != http.StatusUnprocessableEntity {
			t.Errorf("invalid event: %d", code)
		}
		huge := []byte(`{"events":[],"pad":"` + strings.Repeat("p", logs.MaxIngestBody) + `"}`)
		if code, _, _ := s.do(t, http.MethodPost, "/internal/v1/logs/events", good, huge); code != http.StatusRequestEntityTooLarge {
			t.Errorf("huge body: %d", code)
		}
	})
}

func TestClient(t *testing.T) {
	servers(t, func(t *testing.T, s *server) {
		keys, _ := authn.NewServiceKeys(serviceKey, "users")
		c := logs.NewClient(s.url+"/", keys, nil)
		e := ev(uuid.NewString(), "LOGIN", outbox.Success, "client", base)
		if err := c.Ingest(t.Context(), []outbox.Event{e}); err != nil {
			t.Fatal(err)
		}
		if n := count(t, s.db); n != 1 {
			t.Errorf("%d stored", n)
		}
		bad := ev("", "LOGIN", "meh", "bad", base)
		if err := c.Ingest(t.Context(), []outbox.Event{bad}); !errors.Is(err, outbox.ErrRejected) {
			t.Errorf("invalid event: %v, want ErrRejected so the relay parks it", err)
		}
		forger, _ := authn.NewServiceKeys(strings.Repeat("y", 40), "users")
		err := logs.NewClient(s.url, forger, nil).Ingest(t.Context(), []outbox.Event{e})
		if err == nil || errors.Is(err, outbox.ErrRejected) {
			t.Errorf("wrong key: %v, want a retryable error", err)
		}
		s.down.Store(1)
		if err := c.Ingest(t.Context(), []outbox.Event{e}); err == nil || errors.Is(err, outbox.ErrRejected) {
			t.Errorf("503: %v, want a retryable error", err)
		}
	})
}

// The whole path of split mode: a service's outbox, its relay, the HTTP
// client, the internal route and the store, while the logs service fails
// for a while. Every event arrives exactly once, in order.
func TestRelayToLogsOverHTTP(t *testing.T) {
	servers(t, func(t *testing.T, s *server) {
		// The producing service's own database, on the same engine.
		var produceURL string
		if s.db.Dialect == sqldb.Postgres {
			produceURL = sqldbtest.PostgresURL(t)
		} else {
			produceURL = sqldbtest.SQLiteURL(t)
		}
		pdb := sqldbtest.OpenURL(t, produceURL, nil, "")
		if err := sqldb.Migrate(t.Context(), pdb, outbox.Migrations("videos_outbox", pdb.Dialect), outbox.VersionTable("videos_outbox")); err != nil {
			t.Fatal(err)
		}
		ob := outbox.New(pdb, "videos_outbox", outbox.WithBatchSize(100), outbox.WithPollInterval(20*time.Millisecond),
			outbox.WithBackoff(time.Millisecond, 20*time.Millisecond))
		var ids []string
		for i := range 700 {
			e := ev(uuid.NewString(), "STREAM_VIDEO", outbox.Success, fmt.Sprint(i), base.Add(time.Duration(i)*time.Millisecond))
			e.Service = "videos"
			if err := ob.Add(t.Context(), pdb.W, e); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, e.ID)
		}
		s.down.Store(8) // the logs service is restarting
		keys, _ := authn.NewServiceKeys(serviceKey, "videos")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ob.Run(ctx, logs.NewClient(s.url, keys, nil)) }()
		// Until every event is stored and the relay has deleted what it
		// delivered: stopping it between the two leaves delivered rows in
		// the outbox (delivered again by the next run, which the logs
		// service deduplicates), which is not what this test checks.
		pending := func() int64 {
			st, err := ob.Stats(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			return st.Pending
		}
		deadline := time.Now().Add(20 * time.Second)
		for (count(t, s.db) < len(ids) || pending() != 0) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		got := all(t, s.svc, logs.Filter{Service: "videos"}, 1000)
		if len(got) != len(ids) || count(t, s.db) != len(ids) {
			t.Fatalf("%d events stored, want exactly %d", len(got), len(ids))
		}
		for i, e := range got { // newest first
			if e.ID != ids[len(ids)-1-i] {
				t.Fatalf("event %d is %s, want %s", i, e.ID, ids[len(ids)-1-i])
			}
		}
		if st, err := ob.Stats(t.Context()); err != nil || st.Pending != 0 {
			t.Errorf("outbox not empty: %+v %v", st, err)
		}
	})
}
