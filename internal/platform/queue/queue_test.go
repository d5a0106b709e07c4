package queue_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/reel-video/reel/internal/platform/queue"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

type echoArgs struct {
	Video string `json:"video"`
}

func (echoArgs) Kind() string { return "echo" }

type echoWorker struct {
	river.WorkerDefaults[echoArgs]
	done chan string
}

func (w *echoWorker) Work(ctx context.Context, j *river.Job[echoArgs]) error {
	w.done <- j.Args.Video
	return nil
}

// open migrates River into a fresh database and starts a client that works
// echo jobs; migrating twice must be harmless (every start migrates).
func open(t *testing.T, db *sqldb.DB) (*queue.Client, chan string) {
	t.Helper()
	ctx := t.Context()
	for range 2 {
		if err := queue.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	w := &echoWorker{done: make(chan string, 8)}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	c, err := queue.New(db, queue.Config{Workers: workers, Queues: map[string]int{river.QueueDefault: 2}, PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return c, w.done
}

func waitFor(t *testing.T, done chan string, want string) {
	t.Helper()
	select {
	case got := <-done:
		if got != want {
			t.Fatalf("worked %q, want %q", got, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("job %q never ran", want)
	}
}

// A job inserted in a transaction exists only if the transaction commits,
// and then it runs.
func TestJobsFollowTheirTransaction(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		c, done := open(t, db)
		errRollback := errors.New("roll back")
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := c.InsertTx(ctx, tx, echoArgs{Video: "rolled-back"}, nil); err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatal(err)
		}
		err = db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := c.InsertTx(ctx, tx, echoArgs{Video: "committed"}, nil)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, done, "committed")
		res, err := c.JobList(ctx, river.NewJobListParams().States(rivertype.JobStateCompleted, rivertype.JobStateAvailable, rivertype.JobStateRunning))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Jobs) != 1 {
			t.Fatalf("jobs after one rollback and one commit: %d", len(res.Jobs))
		}
		var args echoArgs
		if err := json.Unmarshal(res.Jobs[0].EncodedArgs, &args); err != nil || args.Video != "committed" {
			t.Fatalf("the job's args: %s (%v)", res.Jobs[0].EncodedArgs, err)
		}
	}, nil, "")
}

// Unique by arguments: a second insert for the same video while the first
// is pending is a duplicate, not a second job.
func TestUniqueByArgs(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		if err := queue.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		c, err := queue.New(db, queue.Config{}) // insert-only: nothing works the jobs
		if err != nil {
			t.Fatal(err)
		}
		opts := &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
		first, err := c.Insert(ctx, echoArgs{Video: "v1"}, opts)
		if err != nil {
			t.Fatal(err)
		}
		again, err := c.Insert(ctx, echoArgs{Video: "v1"}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !again.UniqueSkippedAsDuplicate || again.Job.ID != first.Job.ID {
			t.Fatalf("second insert: duplicate=%v id %d, first id %d", again.UniqueSkippedAsDuplicate, again.Job.ID, first.Job.ID)
		}
		other, err := c.Insert(ctx, echoArgs{Video: "v2"}, opts)
		if err != nil || other.UniqueSkippedAsDuplicate {
			t.Fatalf("another video's job: %v, duplicate=%v", err, other.UniqueSkippedAsDuplicate)
		}
	}, nil, "")
}

// Counts counts jobs by kind and state.
func TestCounts(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		if err := queue.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		c, err := queue.New(db, queue.Config{})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"a", "b", "c"} {
			if _, err := c.Insert(ctx, echoArgs{Video: v}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Insert(ctx, echoArgs{Video: "later"}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		counts, err := queue.Counts(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		want := []queue.Count{{Kind: "echo", State: rivertype.JobStateAvailable, N: 3}, {Kind: "echo", State: rivertype.JobStateScheduled, N: 1}}
		if len(counts) != len(want) || counts[0] != want[0] || counts[1] != want[1] {
			t.Fatalf("counts %+v, want %+v", counts, want)
		}
	}, nil, "")
}

type newerArgs struct{}

func (newerArgs) Kind() string { return "added_by_a_newer_release" }

// A kind this process has no worker for (a newer release's, in a rolling
// upgrade) is left available for a process that has one, its attempts
// untouched, while the kinds it knows run: a job inserted before the
// known one would otherwise be fetched first.
func TestUnknownKindsAreLeftForOthers(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		c, done := open(t, db)
		newer, err := queue.New(db, queue.Config{}) // insert-only: any kind
		if err != nil {
			t.Fatal(err)
		}
		res, err := newer.Insert(ctx, newerArgs{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Insert(ctx, echoArgs{Video: "v1"}, nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, done, "v1")
		j, err := c.JobGet(ctx, res.Job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.State != rivertype.JobStateAvailable || j.Attempt != 0 {
			t.Fatalf("the unknown kind's job: state %s, attempt %d; want available, 0", j.State, j.Attempt)
		}
	}, nil, "")
}
