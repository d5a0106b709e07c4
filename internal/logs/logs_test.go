package logs_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/logs"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

// engines runs fn on a fresh logs database on every engine.
func engines(t *testing.T, fn func(t *testing.T, svc *logs.Service, db *sqldb.DB)) {
	t.Helper()
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		fn(t, logs.New(db, obs.Discard()), db)
	}, logs.Migrations(), logs.MigrationTable)
}

// base is a fixed point in time, so tests do not depend on the clock.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// ev makes a valid event.
func ev(user, action, outcome, desc string, at time.Time) outbox.Event {
	e := outbox.Event{
		ID: uuid.Must(uuid.NewV7()).String(), OccurredAt: at, Action: action, Service: "users",
		Outcome: outcome, Description: desc, RequestID: "req-1", IP: "192.0.2.1", UserAgent: "test/1.0",
		Metadata: map[string]any{},
	}
	if user != "" {
		e.UserID = &user
	}
	return e
}

func ingest(t *testing.T, svc *logs.Service, events ...outbox.Event) {
	t.Helper()
	for len(events) > 0 {
		n := min(len(events), logs.MaxBatch)
		if err := svc.Ingest(t.Context(), events[:n]); err != nil {
			t.Fatal(err)
		}
		events = events[n:]
	}
}

func count(t *testing.T, db *sqldb.DB) int {
	t.Helper()
	var n int
	if err := db.R.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM log_events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// all returns every event matching f, paging with the given page size.
func all(t *testing.T, svc *logs.Service, f logs.Filter, size int) []outbox.Event {
	t.Helper()
	var out []outbox.Event
	req := page.Request{Limit: size}
	for {
		p, err := svc.Search(t.Context(), f, req)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Items...)
		if p.NextCursor == nil {
			return out
		}
		c, err := page.Decode(*p.NextCursor)
		if err != nil {
			t.Fatal(err)
		}
		req.After = c
	}
}

func TestIngestIsIdempotent(t *testing.T) {
	engines(t, func(t *testing.T, svc *logs.Service, db *sqldb.DB) {
		user := uuid.NewString()
		var first []outbox.Event
		for i := range 10 {
			e := ev(user, "LOGIN", outbox.Success, fmt.Sprintf("login %d", i), base.Add(time.Duration(i)*time.Second))
			first = append(first, e.On("target-"+fmt.Sprint(i)).With("n", i).With("email", "a@example.com"))
		}
		ingest(t, svc, first...)
		// The same batch again (a relay that crashed before deleting), then
		// an overlapping one with a duplicate inside it.
		ingest(t, svc, first...)
		second := append([]outbox.Event{}, first[5:]...)
		for i := range 5 {
			second = append(second, ev("", "LOGIN", outbox.Failure, fmt.Sprintf("failed %d", i), base.Add(time.Minute)))
		}
		second = append(second, second[len(second)-1])
		ingest(t, svc, second...)
		if n := count(t, db); n != 15 {
			t.Fatalf("%d events stored, want 15", n)
		}

		got := all(t, svc, logs.Filter{UserID: user}, 100)
		if len(got) != 10 {
			t.Fatalf("%d events of the user, want 10", len(got))
		}
		// Newest first, every field as ingested.
		want := first[9]
		g := got[0]
		if g.ID != want.ID || !g.OccurredAt.Equal(want.OccurredAt) || *g.UserID != user || g.Action != "LOGIN" ||
			g.Service != "users" || g.Outcome != "success" || g.Description != want.Description || *g.TargetID != "target-9" ||
			g.RequestID != "req-1" || g.IP != "192.0.2.1" || g.UserAgent != "test/1.0" ||
			g.Metadata["n"] != float64(9) || g.Metadata["email"] != "a@example.com" {
			t.Errorf("stored event differs:\n got %+v\nwant %+v", g, want)
		}
		anon := all(t, svc, logs.Filter{Outcome: outbox.Failure}, 100)
		if len(anon) != 5 || anon[0].UserID != nil || anon[0].TargetID != nil {
			t.Errorf("anonymous failures: %+v", anon)
		}
	})
}

func TestIngestValidates(t *testing.T) {
	engines(t, func(t *testing.T, svc *logs.Service, db *sqldb.DB) {
		good := func() outbox.Event { return ev(uuid.NewString(), "LOGIN", outbox.Success, "ok", base) }
		bad := map[string]func(e *outbox.Event){
			"id":          func(e *outbox.Event) { e.ID = "not-a-uuid" },
			"no time":     func(e *outbox.Event) { e.OccurredAt = time.Time{} },
			"user id":     func(e *outbox.Event) { s := "bob"; e.UserID = &s },
			"action":      func(e *outbox.Event) { e.Action = "login" },
			"no action":   func(e *outbox.Event) { e.Action = "" },
			"service":     func(e *outbox.Event) { e.Service = "Users Service" },
			"outcome":     func(e *outbox.Event) { e.Outcome = "ok" },
			"target":      func(e *outbox.Event) { s := strings.Repeat("t", 300); e.TargetID = &s },
			"request id":  func(e *outbox.Event) { e.RequestID = strings.Repeat("r", 200) },
			"big meta":    func(e *outbox.Event) { e.Metadata = map[string]any{"x": strings.Repeat("m", logs.MaxMetadata)} },
			"unencodable": func(e *outbox.Event) { e.Metadata = map[string]any{"f": func() {}} },
		}
		for name, mutate := range bad {
			e := good()
			mutate(&e)
			err := svc.Ingest(t.Context(), []outbox.Event{good(), e})
			if errs.KindOf(err) != errs.Validation {
				t.Errorf("%s: err = %v, want a validation error", name, err)
			}
		}
		if n := count(t, db); n != 0 {
			t.Errorf("%d events stored from refused batches: a batch must be all or nothing", n)
		}

		big := make([]outbox.Event, logs.MaxBatch+1)
		for i := range big {
			big[i] = good()
		}
		if err := svc.Ingest(t.Context(), big); errs.KindOf(err) != errs.TooLarge {
			t.Errorf("oversized batch: %v, want too large", err)
		}

		// Descriptive text is cut to size and cleaned, not refused.
		e := good()
		e.Description = strings.Repeat("é", logs.MaxDescription) // 2 bytes each
		e.UserAgent = "agent\x00with nul and bad utf-8 \xff" + strings.Repeat("a", 1000)
		e.Metadata = nil
		ingest(t, svc, e)
		got := all(t, svc, logs.Filter{}, 10)
		if len(got) != 1 {
			t.Fatalf("got %d events", len(got))
		}
		g := got[0]
		if len(g.Description) > logs.MaxDescription || !strings.HasPrefix(g.Description, "éé") || strings.ContainsRune(g.Description, '\uFFFD') {
			t.Errorf("description not cut cleanly: %d bytes", len(g.Description))
		}
		if len(g.UserAgent) > logs.MaxUserAgent || strings.Contains(g.UserAgent, "\x00") || !strings.HasPrefix(g.UserAgent, "agentwith nul") {
			t.Errorf("user agent not cleaned: %q", g.UserAgent[:40])
		}
		if g.Metadata == nil || len(g.Metadata) != 0 {
			t.Errorf("nil metadata stored as %v, want {}", g.Metadata)
		}
	})
}

func TestSearchFilters(t *testing.T) {
	engines(t, func(t *testing.T, svc *logs.Service, db *sqldb.DB) {
		alice, bob := uuid.NewString(), uuid.NewString()
		at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
		vid := ev(bob, "UPLOAD_VIDEO", outbox.Success, "uploaded Holiday_100%.mp4", at(4))
		vid.Service = "videos"
		events := []outbox.Event{
			ev(alice, "LOGIN", outbox.Success, "logged in", at(0)),
			ev(alice, "LOGIN", outbox.Failure, "login failed: wrong password", at(1)),
			ev(bob, "LOGIN", outbox.Success, "Logged In from a new device", at(2)),
			ev(bob, "LOGOUT", outbox.Success, "logged out", at(3)),
			vid,
			ev("", "LOGIN", outbox.Denied, "login throttled", at(5)),
		}
		ingest(t, svc, events...)
		descs := func(f logs.Filter) string {
			var out []string
			for _, e := range all(t, svc, f, 2) {
				out = append(out, e.Description)
			}
			return strings.Join(out, "|")
		}
		cases := []struct {
			name string
			f    logs.Filter
			want string
		}{
			{"all, newest first", logs.Filter{}, "login throttled|uploaded Holiday_100%.mp4|logged out|Logged In from a new device|login failed: wrong password|logged in"},
			{"user", logs.Filter{UserID: alice}, "login failed: wrong password|logged in"},
			{"user in upper case", logs.Filter{UserID: strings.ToUpper(alice)}, "login failed: wrong password|logged in"},
			{"action", logs.Filter{Action: "LOGOUT"}, "logged out"},
			{"unknown action", logs.Filter{Action: "NO_SUCH_ACTION"}, ""},
			{"service", logs.Filter{Service: "videos"}, "uploaded Holiday_100%.mp4"},
			{"outcome", logs.Filter{Outcome: outbox.Denied}, "login throttled"},
			{"since inclusive", logs.Filter{Since: at(4)}, "login throttled|uploaded Holiday_100%.mp4"},
			{"until exclusive", logs.Filter{Until: at(1)}, "logged in"},
			{"window", logs.Filter{Since: at(1), Until: at(3)}, "Logged In from a new device|login failed: wrong password"},
			{"q ignores case", logs.Filter{Q: "LOGGED IN"}, "Logged In from a new device|logged in"},
			{"q wildcards are literal", logs.Filter{Q: "_100%"}, "uploaded Holiday_100%.mp4"},
			{"q percent alone", logs.Filter{Q: "%"}, "uploaded Holiday_100%.mp4"},
			{"combined", logs.Filter{UserID: bob, Action: "LOGIN", Q: "device"}, "Logged In from a new device"},
		}
		for _, c := range cases {
			if got := descs(c.f); got != c.want {
				t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
			}
		}

		for name, f := range map[string]logs.Filter{
			"user":    {UserID: "alice"},
			"action":  {Action: "login"},
			"service": {Service: "Videos!"},
			"outcome": {Outcome: "ok"},
			"range":   {Since: at(2), Until: at(1)},
			"q":       {Q: strings.Repeat("q", logs.MaxQ+1)},
		} {
			if _, err := svc.Search(t.Context(), f, page.Request{Limit: 10}); errs.KindOf(err) != errs.Invalid {
				t.Errorf("bad %s filter: %v, want invalid", name, err)
			}
		}
	})
}

// Paging neither repeats nor skips an event while new ones keep arriving,
// including events with the same timestamp (ties broken by id).
func TestPagingStableWhileIngesting(t *testing.T) {
	engines(t, func(t *testing.T, svc *logs.Service, db *sqldb.DB) {
		var initial []outbox.Event
		for i := range 1000 {
			// Ten events per millisecond: many ties on occurred_at.
			initial = append(initial, ev(uuid.NewString(), "LOGIN", outbox.Success, "x", base.Add(time.Duration(i/10)*time.Millisecond)))
		}
		ingest(t, svc, initial...)

		ctx, stop := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				// Newer events, and late ones at the same instants as
				// existing events (relays deliver late).
				batch := []outbox.Event{
					ev(uuid.NewString(), "LOGIN", outbox.Success, "new", base.Add(time.Hour+time.Duration(i)*time.Millisecond)),
					ev(uuid.NewString(), "LOGIN", outbox.Success, "late", base.Add(time.Duration(i%100)*time.Millisecond)),
				}
				if err := svc.Ingest(context.Background(), batch); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		seen := map[string]int{}
		var prev *outbox.Event
		req := page.Request{Limit: 37}
		for {
			p, err := svc.Search(t.Context(), logs.Filter{}, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range p.Items {
				seen[e.ID]++
				if prev != nil && (e.OccurredAt.After(prev.OccurredAt) || (e.OccurredAt.Equal(prev.OccurredAt) && e.ID >= prev.ID)) {
					t.Fatalf("order broken: %s %s after %s %s", e.OccurredAt, e.ID, prev.OccurredAt, prev.ID)
				}
				prev = &e
			}
			if p.NextCursor == nil {
				break
			}
			req.After, _ = page.Decode(*p.NextCursor)
		}
		stop()
		wg.Wait()
		for id, n := range seen {
			if n > 1 {
				t.Errorf("event %s listed %d times", id, n)
			}
		}
		for _, e := range initial {
			if seen[e.ID] != 1 {
				t.Errorf("event %s present before paging began was skipped", e.ID)
			}
		}
	})
}

func TestPurge(t *testing.T) {
	engines(t, func(t *testing.T, svc *logs.Service, db *sqldb.DB) {
		now := base.Add(100 * 24 * time.Hour)
		svc.SetClock(func() time.Time { return now })
		var old, fresh []outbox.Event
		// More than one purge chunk of expired events.
		for i := range 12000 {
			old = append(old, ev("", "LOGIN", outbox.Success, "old", now.Add(-91*24*time.Hour-time.Duration(i)*time.Second)))
		}
		for i := range 50 {
			fresh = append(fresh, ev("", "LOGIN", outbox.Success, "fresh", now.Add(-89*24*time.Hour+time.Duration(i)*time.Second)))
		}
		ingest(t, svc, append(old, fresh...)...)
		if err := svc.Retain(t.Context(), 90*24*time.Hour); err != nil {
			t.Fatal(err)
		}
		got := all(t, svc, logs.Filter{}, 1000)
		if len(got) != len(fresh) {
			t.Fatalf("%d events left, want the %d fresh ones", len(got), len(fresh))
		}
		for _, e := range got {
			if e.Description != "fresh" {
				t.Fatalf("kept an expired event: %+v", e)
			}
		}
		n, err := svc.Purge(t.Context(), now)
		if err != nil || n != int64(len(fresh)) {
			t.Errorf("Purge(now) = %d, %v; want %d", n, err, len(fresh))
		}
	})
}

func TestExportStreamsEveryMatch(t *testing.T) {
	engines(t, func(t *testing.T, svc *logs.Service, db *sqldb.DB) {
		user := uuid.NewString()
		var events []outbox.Event
		for i := range 1500 {
			u := user
			if i%3 == 0 {
				u = uuid.NewString()
			}
			events = append(events, ev(u, "LOGIN", outbox.Success, "e", base.Add(time.Duration(i)*time.Second)))
		}
		ingest(t, svc, events...)
		var n int
		var last time.Time
		err := svc.Export(t.Context(), logs.Filter{UserID: user}, func(e outbox.Event) error {
			if n > 0 && e.OccurredAt.After(last) {
				t.Fatalf("export not newest first")
			}
			last = e.OccurredAt
			n++
			return nil
		})
		if err != nil || n != 1000 {
			t.Fatalf("exported %d, %v; want 1000", n, err)
		}
		stopErr := fmt.Errorf("client went away")
		n = 0
		err = svc.Export(t.Context(), logs.Filter{}, func(outbox.Event) error {
			n++
			if n == 10 {
				return stopErr
			}
			return nil
		})
		if n != 10 || err == nil || !strings.Contains(err.Error(), "client went away") {
			t.Errorf("export did not stop at the callback's error: n=%d err=%v", n, err)
		}
	})
}
