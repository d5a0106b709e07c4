package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

const table = "test_outbox"

// open returns a migrated outbox database on url.
func open(t *testing.T, url string) *sqldb.DB {
	t.Helper()
	db := sqldbtest.OpenURL(t, url, nil, "")
	if err := sqldb.Migrate(t.Context(), db, outbox.Migrations(table, db.Dialect), outbox.VersionTable(table)); err != nil {
		t.Fatal(err)
	}
	return db
}

// fast are relay options that keep tests quick.
func fast(extra ...outbox.Option) []outbox.Option {
	return append([]outbox.Option{outbox.WithPollInterval(20 * time.Millisecond), outbox.WithBackoff(time.Millisecond, 10*time.Millisecond)}, extra...)
}

// store is a sink that keeps what it acknowledged, like the logs service.
type store struct {
	mu       sync.Mutex
	order    []string       // ids in delivery order
	received map[string]int // deliveries per id
	fail     func(call int, events []outbox.Event) error
	calls    int
}

func newStore() *store { return &store{received: map[string]int{}} }

func (s *store) Ingest(_ context.Context, events []outbox.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.fail != nil {
		if err := s.fail(s.calls, events); err != nil {
			return err
		}
	}
	for _, e := range events {
		s.received[e.ID]++
		s.order = append(s.order, e.ID)
	}
	return nil
}

func (s *store) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.received)
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// addEvents writes n events in transactions of up to 100 and returns their
// ids in order.
func addEvents(t *testing.T, db *sqldb.DB, ob *outbox.Outbox, n int) []string {
	t.Helper()
	ids, err := tryAddEvents(t.Context(), db, ob, n)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func tryAddEvents(ctx context.Context, db *sqldb.DB, ob *outbox.Outbox, n int) ([]string, error) {
	var ids []string
	for i := 0; i < n; i += 100 {
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			var evs []outbox.Event
			for j := i; j < min(n, i+100); j++ {
				evs = append(evs, outbox.NewEvent(ctx, "test", "LOGIN", outbox.Success, fmt.Sprintf("event %d", j)))
			}
			if err := ob.Add(ctx, tx, evs...); err != nil {
				return err
			}
			for _, e := range evs {
				ids = append(ids, e.ID)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// run starts ob's relay and stops it at cleanup, failing if it errs.
func run(t *testing.T, ob *outbox.Outbox, sink outbox.Sink) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ob.Run(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay: %v", err)
		}
	})
}

func pending(t *testing.T, ob *outbox.Outbox) int64 {
	t.Helper()
	st, err := ob.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st.Pending
}

func TestRelayDeliversInOrder(t *testing.T) {
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		db := open(t, url)
		ob := outbox.New(db, table, fast(outbox.WithBatchSize(300))...)
		ids := addEvents(t, db, ob, 1000)
		s := newStore()
		run(t, ob, s)
		waitFor(t, "all events", func() bool { return s.count() == len(ids) })
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, id := range ids {
			if s.order[i] != id {
				t.Fatalf("delivery %d is %s, want %s: out of order", i, s.order[i], id)
			}
		}
		if s.calls > 5 {
			t.Errorf("%d sink calls for 1000 events in batches of 300: not batching", s.calls)
		}
		waitFor(t, "empty outbox", func() bool { return pending(t, ob) == 0 })
	})
}

func TestRelayRetriesWhileSinkFails(t *testing.T) {
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		db := open(t, url)
		reg := prometheus.NewRegistry()
		m, err := outbox.NewMetrics(reg)
		if err != nil {
			t.Fatal(err)
		}
		ob := outbox.New(db, table, fast(outbox.WithBatchSize(50), outbox.WithMetrics(m))...)
		ids := addEvents(t, db, ob, 400)
		s := newStore()
		down := errors.New("logs service unreachable")
		// Down for the first 10 calls, then every third call fails.
		s.fail = func(call int, _ []outbox.Event) error {
			if call <= 10 || call%3 == 0 {
				return down
			}
			return nil
		}
		run(t, ob, s)
		waitFor(t, "all events", func() bool { return s.count() == len(ids) })
		waitFor(t, "empty outbox", func() bool { return pending(t, ob) == 0 })

		s.mu.Lock()
		for _, id := range ids {
			if n := s.received[id]; n != 1 {
				t.Errorf("event %s stored %d times, want exactly once", id, n)
			}
		}
		for i, id := range ids {
			if s.order[i] != id {
				t.Fatalf("delivery %d out of order after retries", i)
			}
		}
		s.mu.Unlock()
		if got := counterValue(t, m.Delivered(table)); got != 400 {
			t.Errorf("delivered counter = %v, want 400", got)
		}
		if got := counterValue(t, m.Failed(table)); got < 10 {
			t.Errorf("failed counter = %v, want at least 10", got)
		}
	})
}

func TestTwoRelaysOneOutbox(t *testing.T) {
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		// Two handles on one database, as two replicas would have.
		db1, db2 := open(t, url), sqldbtest.OpenURL(t, url, nil, "")
		ob1 := outbox.New(db1, table, fast(outbox.WithBatchSize(20))...)
		ob2 := outbox.New(db2, table, fast(outbox.WithBatchSize(20))...)
		s := newStore()
		// A slow sink makes the two relays' claims overlap in time.
		slow := outbox.SinkFunc(func(ctx context.Context, evs []outbox.Event) error {
			time.Sleep(2 * time.Millisecond)
			return s.Ingest(ctx, evs)
		})
		run(t, ob1, slow)
		run(t, ob2, slow)

		var ids []string
		var mu sync.Mutex
		var wg sync.WaitGroup
		for p, ob := range []*outbox.Outbox{ob1, ob2} {
			db := []*sqldb.DB{db1, db2}[p]
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := tryAddEvents(context.Background(), db, ob, 600)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				ids = append(ids, got...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		waitFor(t, "all events", func() bool { return s.count() == len(ids) })
		waitFor(t, "empty outbox", func() bool { return pending(t, ob1) == 0 })
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.order) != len(ids) {
			t.Errorf("%d deliveries for %d events: some delivered twice", len(s.order), len(ids))
		}
		for _, id := range ids {
			if s.received[id] != 1 {
				t.Errorf("event %s delivered %d times", id, s.received[id])
			}
		}
	})
}

func TestRelayParksRejectedEvent(t *testing.T) {
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		db := open(t, url)
		ob := outbox.New(db, table, fast()...)
		ids := addEvents(t, db, ob, 40)
		bad := outbox.NewEvent(t.Context(), "test", "BAD", outbox.Success, "poison")
		if err := ob.Add(t.Context(), db.W, bad); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, addEvents(t, db, ob, 40)...)
		s := newStore()
		invalid := errs.New(errs.Validation, "invalid_event", "bad event")
		s.fail = func(_ int, evs []outbox.Event) error {
			for _, e := range evs {
				if e.Action == "BAD" {
					return fmt.Errorf("ingest: %w", invalid)
				}
			}
			return nil
		}
		run(t, ob, s)
		waitFor(t, "all good events", func() bool { return s.count() == len(ids) })
		waitFor(t, "only the bad event left", func() bool { return pending(t, ob) == 1 })
		var id string
		if err := db.R.QueryRowContext(t.Context(), `SELECT id FROM `+table).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if id != bad.ID {
			t.Errorf("left %s in the outbox, want the rejected %s", id, bad.ID)
		}
	})
}

// TestRelayWakesAtOnce and TestRelayGathersTrickle run in synctest
// bubbles: the bubble's clock moves only when every goroutine waits, so
// "at once", "idle" and "events 10 ms apart" are exact, not sleeps that a
// busy machine may stretch. (The database is opened inside the bubble;
// time stands still while a query is on its way.)

func TestRelayWakesAtOnce(t *testing.T) {
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		synctest.Test(t, func(t *testing.T) {
			db := open(t, url)
			// A poll interval this long means only a wake-up can deliver.
			ob := outbox.New(db, table, outbox.WithPollInterval(time.Hour))
			s := newStore()
			run(t, ob, s)
			synctest.Wait() // idle, waiting for a wake-up or the hour

			start := time.Now()
			addEvents(t, db, ob, 1) // inside a transaction
			waitFor(t, "the event", func() bool { return s.count() == 1 })
			if d := time.Since(start); d > time.Second {
				t.Errorf("delivered after %v, want at once", d)
			}

			if err := ob.Add(t.Context(), db.W, outbox.NewEvent(t.Context(), "test", "LOGIN", outbox.Failure, "alone")); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the second event", func() bool { return s.count() == 2 })
		})
	})
}

// Events that trickle in while the relay gathers go out in one delivery,
// and the relay does not ask an outbox it has just drained again at once.
func TestRelayGathersTrickle(t *testing.T) {
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		synctest.Test(t, func(t *testing.T) {
			db := open(t, url)
			ob := outbox.New(db, table, outbox.WithPollInterval(time.Hour), outbox.WithGather(time.Second))
			s := newStore()
			run(t, ob, s)
			synctest.Wait() // idle
			for i := range 5 {
				if err := ob.Add(t.Context(), db.W, outbox.NewEvent(t.Context(), "test", "LOGIN", outbox.Success, fmt.Sprint("trickle ", i))); err != nil {
					t.Fatal(err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			waitFor(t, "the events", func() bool { return s.count() == 5 })
			s.mu.Lock()
			calls := s.calls
			s.mu.Unlock()
			if calls != 1 {
				t.Fatalf("5 events 10 ms apart went out in %d deliveries, want 1", calls)
			}
		})
	})
}

func TestRelayStopsWithBatchInFlight(t *testing.T) {
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		db := open(t, url)
		ob := outbox.New(db, table, fast()...)
		addEvents(t, db, ob, 10)
		started := make(chan struct{})
		blocking := outbox.SinkFunc(func(ctx context.Context, _ []outbox.Event) error {
			close(started)
			<-ctx.Done()
			return ctx.Err()
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ob.Run(ctx, blocking) }()
		<-started
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run = %v, want nil on cancellation", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancellation")
		}
		// The batch was given up and released: another relay takes it now.
		s := newStore()
		run(t, outbox.New(db, table, fast()...), s)
		waitFor(t, "redelivery", func() bool { return s.count() == 10 })
	})
}

func TestMetricsSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := outbox.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := outbox.NewMetrics(reg)
	if err != nil {
		t.Fatalf("second NewMetrics on one registry: %v", err)
	}
	a.Delivered("x").Add(2)
	if got := counterValue(t, b.Delivered("x")); got != 2 {
		t.Errorf("metrics not shared: %v", got)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
