package videos

import (
	"context"
	"encoding/json"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

// Fair queueing: one user's twenty waiting poster jobs do not delay
// another user's first, which is scheduled ahead of all but the first of
// them, and that user's second goes before most of the first user's.
func TestFairQueueing(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		svc, _, _ := testService(t, db) // inserts only: nothing runs the jobs
		ctx := context.Background()
		ann, bob := uuid.NewString(), uuid.NewString()
		now := time.Now()
		for range 20 {
			if err := svc.enqueue(ctx, KindPoster, readyRecord(ann, now)); err != nil {
				t.Fatal(err)
			}
		}
		for range 2 {
			if err := svc.enqueue(ctx, KindPoster, readyRecord(bob, now)); err != nil {
				t.Fatal(err)
			}
		}
		res, err := svc.jobs.JobList(ctx, river.NewJobListParams().First(100))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Jobs) != 22 {
			t.Fatalf("%d jobs", len(res.Jobs))
		}
		jobs := append([]*rivertype.JobRow(nil), res.Jobs...) // res.Jobs stays in insertion order
		sort.SliceStable(jobs, func(i, j int) bool { return jobs[i].ScheduledAt.Before(jobs[j].ScheduledAt) })
		var order []string
		for _, j := range jobs {
			var m jobMeta
			if err := json.Unmarshal(j.Metadata, &m); err != nil {
				t.Fatal(err)
			}
			who := "ann"
			if m.OwnerID == bob {
				who = "bob"
			}
			order = append(order, who)
		}
		// Ann's first runs at once, as does Bob's first; Bob's second is
		// spaced like Ann's second, ahead of her eighteen others.
		if order[0] == order[1] || (indexFrom(order, "bob", 2) != 2 && indexFrom(order, "bob", 2) != 3) {
			t.Fatalf("order by scheduled_at: %v", order)
		}
		var last time.Time
		for _, j := range res.Jobs {
			var m jobMeta
			_ = json.Unmarshal(j.Metadata, &m)
			if m.OwnerID != ann {
				continue
			}
			if !j.ScheduledAt.After(last) {
				t.Fatalf("ann's jobs are not spaced: %v after %v", j.ScheduledAt, last)
			}
			last = j.ScheduledAt
		}
		if spread := last.Sub(now); spread < 30*time.Second {
			t.Fatalf("ann's twentieth job is scheduled %v from now, want about 19 steps of 2 s", spread)
		}
	}, Migrations(), MigrationTable)
}

// indexFrom is the index of the first x in xs at or after from, or -1.
func indexFrom(xs []string, x string, from int) int {
	for i := from; i < len(xs); i++ {
		if xs[i] == x {
			return i
		}
	}
	return -1
}
