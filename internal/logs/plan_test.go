package logs

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

// Each filter reads the index made for it, newest first, without sorting:
// that is what keeps a page cheap however many events there are. SQLite's
// planner is deterministic on an empty table (no statistics), so its plans
// can be checked here; PostgreSQL's depend on statistics.
func TestSearchUsesIndexes(t *testing.T) {
	db := sqldbtest.OpenURL(t, sqldbtest.SQLiteURL(t), Migrations(), MigrationTable)
	_ = New(db, obs.Discard())
	after := page.Cursor{T: time.Now().UnixMicro(), ID: "01900000-0000-7000-8000-000000000000"}
	for _, c := range []struct {
		f     Filter
		index string
	}{
		{Filter{}, "log_events_time"},
		{Filter{Since: time.Now().Add(-time.Hour)}, "log_events_time"},
		{Filter{Service: "videos", Q: "x"}, "log_events_time"},
		{Filter{UserID: "01900000-0000-7000-8000-000000000001"}, "log_events_user"},
		{Filter{UserID: "01900000-0000-7000-8000-000000000001", Action: "LOGIN"}, "log_events_(user|action)"},
		{Filter{Action: "LOGIN", Until: time.Now()}, "log_events_action"},
		{Filter{Outcome: "denied"}, "log_events_unsuccessful"},
		{Filter{Outcome: "failure", Service: "users"}, "log_events_unsuccessful"},
	} {
		q, args := searchQuery(c.f, after, 101)
		rows, err := db.R.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if !regexp.MustCompile("INDEX "+c.index+" ").MatchString(p) || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("filter %+v: plan %q, want %s without a sort", c.f, p, c.index)
		}
	}
}
