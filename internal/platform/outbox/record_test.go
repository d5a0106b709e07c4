package outbox_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

// Events recorded at once by many callers are each stored exactly once,
// and every caller returns only after its event is committed.
func TestRecordConcurrent(t *testing.T) {
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		db := open(t, url)
		ob := outbox.New(db, table, fast()...)
		const n = 300
		ids := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := outbox.NewEvent(t.Context(), "test", "CHECK_STORAGE", outbox.Success, fmt.Sprintf("read %d", i))
				ids[i] = e.ID
				if err := ob.Record(t.Context(), e); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if got := pending(t, ob); got != n {
			t.Fatalf("%d events stored, want %d", got, n)
		}
		s := newStore()
		run(t, ob, s)
		waitFor(t, "all events", func() bool { return s.count() == n })
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, id := range ids {
			if s.received[id] != 1 {
				t.Fatalf("event %s delivered %d times", id, s.received[id])
			}
		}
	})
}

// A caller whose context has ended before its event was written gets an
// error, and its event is not stored.
func TestRecordCancelled(t *testing.T) {
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		db := open(t, url)
		ob := outbox.New(db, table, fast()...)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		// The write token may still be free, so a cancelled caller can
		// win it and write; either way the answer and the table agree.
		err := ob.Record(ctx, outbox.NewEvent(ctx, "test", "CHECK_STORAGE", outbox.Success, "gone"))
		want := int64(0)
		if err == nil {
			want = 1
		}
		if got := pending(t, ob); got != want {
			t.Fatalf("Record answered %v, and %d events are stored", err, got)
		}
	})
}

// BenchmarkRecord: events recorded on their own by many concurrent
// requests, one INSERT each (Add through the writer) against grouped
// (Record).
func BenchmarkRecord(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		for _, name := range []string{"add", "record"} {
			b.Run(engine+"/"+name, func(b *testing.B) {
				url := sqldbtest.SQLiteURL(b)
				if engine == "postgres" {
					url = sqldbtest.PostgresURL(b)
				}
				db := sqldbtest.OpenURL(b, url, nil, "")
				if err := sqldb.Migrate(b.Context(), db, outbox.Migrations(table, db.Dialect), outbox.VersionTable(table)); err != nil {
					b.Fatal(err)
				}
				ob := outbox.New(db, table)
				b.SetParallelism(32)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					ctx := context.Background()
					for pb.Next() {
						e := outbox.NewEvent(ctx, "bench", "CHECK_STORAGE", outbox.Success, "read")
						var err error
						if name == "add" {
							err = ob.Add(ctx, db.W, e)
						} else {
							err = ob.Record(ctx, e)
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// RecordOrLog returns before the event is stored, stores it in the
// background, or logs why it could not, with the request's id, without
// failing the caller; Wait waits for what it handed on.
func TestRecordOrLog(t *testing.T) {
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		db := open(t, url)
		var logs bytes.Buffer
		ob := outbox.New(db, table, outbox.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
		ctx, cancel := context.WithCancel(obs.WithRequest(t.Context(), obs.Request{ID: "req-7"}))
		// Hold the writer: the event cannot be stored before it is free,
		// and RecordOrLog must not wait for it.
		tx, err := db.W.BeginTx(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`DELETE FROM ` + table); err != nil {
			t.Fatal(err)
		}
		ob.RecordOrLog(ctx, outbox.NewEvent(ctx, "test", "CHECK_STORAGE", outbox.Success, "kept"))
		cancel() // the request is answered: its event is still written
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		ob.Wait()
		if n := pending(t, ob); n != 1 || logs.Len() != 0 {
			t.Fatalf("%d pending, log %q", n, logs.String())
		}
		if err := db.W.Close(); err != nil {
			t.Fatal(err)
		}
		ob.RecordOrLog(ctx, outbox.NewEvent(ctx, "test", "CHECK_STORAGE", outbox.Success, "lost"))
		ob.Wait()
		if l := logs.String(); !strings.Contains(l, `"record activity event"`) || !strings.Contains(l, `"request_id":"req-7"`) || !strings.Contains(l, "CHECK_STORAGE") {
			t.Fatalf("the failure was not logged with the request id: %q", l)
		}
	})
}

// Past MaxBehind events on their way, RecordOrLog waits for its own to be
// stored: a storm of reads cannot pile up events without bound while the
// database lags.
func TestRecordOrLogBounded(t *testing.T) {
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		db := open(t, url)
		if db.Dialect != sqldb.SQLite {
			t.Skip("only SQLite's one writer can be held to keep events waiting")
		}
		ob := outbox.New(db, table)
		ctx := t.Context()
		tx, err := db.W.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`DELETE FROM ` + table); err != nil {
			t.Fatal(err)
		}
		for i := range outbox.MaxBehind {
			ob.RecordOrLog(ctx, outbox.NewEvent(ctx, "test", "CHECK_STORAGE", outbox.Success, strconv.Itoa(i)))
		}
		returned := make(chan struct{})
		go func() {
			ob.RecordOrLog(ctx, outbox.NewEvent(ctx, "test", "CHECK_STORAGE", outbox.Success, "one too many"))
			close(returned)
		}()
		select {
		case <-returned:
			t.Fatal("RecordOrLog returned with the outbox full and its event not stored")
		case <-time.After(200 * time.Millisecond):
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		<-returned
		ob.Wait()
		if n := pending(t, ob); n != outbox.MaxBehind+1 {
			t.Fatalf("%d events stored, want %d", n, outbox.MaxBehind+1)
		}
	})
}

// Wait may run while events are being recorded: every event is stored
// once, and a Wait after the last RecordOrLog sees them all.
func TestWaitWhileRecording(t *testing.T) {
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		db := open(t, url)
		ob := outbox.New(db, table)
		ctx := t.Context()
		const callers, each = 8, 50
		var wg sync.WaitGroup
		for c := range callers {
			wg.Go(func() {
				for i := range each {
					ob.RecordOrLog(ctx, outbox.NewEvent(ctx, "test", "CHECK_STORAGE", outbox.Success, fmt.Sprint(c, i)))
				}
			})
		}
		waits := make(chan struct{})
		go func() {
			defer close(waits)
			for range 20 {
				ob.Wait()
			}
		}()
		wg.Wait()
		<-waits
		ob.Wait()
		if n := pending(t, ob); n != callers*each {
			t.Fatalf("%d events stored, want %d", n, callers*each)
		}
	})
}

// While the relay runs, a recorded event goes straight to its sink and
// never into the table; when the sink fails it waits in the table, and
// direct delivery is not tried again until the relay has delivered; a
// refused event does not stop it; once the relay stops, events go into
// the table again.
func TestRecordDirect(t *testing.T) {
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		db := open(t, url)
		ob := outbox.New(db, table, fast()...)
		s := newStore()
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ob.Run(ctx, s) }()
		defer func() {
			stop()
			<-done
		}()
		record := func(desc string) string {
			t.Helper()
			e := outbox.NewEvent(t.Context(), "test", "CHECK_STORAGE", outbox.Success, desc)
			if err := ob.Record(t.Context(), e); err != nil {
				t.Fatal(err)
			}
			return e.ID
		}
		received := func(id string) int {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.received[id]
		}
		// The relay sets up direct delivery as it starts (and delivers
		// what went into the table before).
		waitFor(t, "direct delivery", func() bool { return received(record("first")) == 1 })
		waitFor(t, "an empty table", func() bool { return pending(t, ob) == 0 })
		if id := record("direct"); received(id) != 1 || pending(t, ob) != 0 {
			t.Fatalf("received %d, %d in the table", received(id), pending(t, ob))
		}

		var alone []string // ids delivered in a call of their own
		s.mu.Lock()
		s.fail = func(_ int, events []outbox.Event) error {
			if len(events) == 1 {
				alone = append(alone, events[0].ID)
			}
			return errs.ErrUnavailable
		}
		s.mu.Unlock()
		down := record("log down")
		if received(down) != 0 || pending(t, ob) != 1 {
			t.Fatalf("with the log down: received %d, %d in the table", received(down), pending(t, ob))
		}
		later := record("log still down")
		s.mu.Lock()
		if slices.Contains(alone, later) {
			t.Error("direct delivery tried again before the relay delivered")
		}
		s.fail = func(_ int, events []outbox.Event) error {
			for _, e := range events {
				if e.Description == "bad" {
					return outbox.ErrRejected
				}
			}
			return nil
		}
		s.mu.Unlock()
		waitFor(t, "the relay's delivery", func() bool { return pending(t, ob) == 0 })
		if received(down) != 1 || received(later) != 1 {
			t.Fatalf("after the log came back: received %d and %d", received(down), received(later))
		}
		now := record("direct again")
		if received(now) != 1 || pending(t, ob) != 0 {
			t.Fatalf("after the relay delivered: received %d, %d in the table", received(now), pending(t, ob))
		}
		record("bad") // refused: parked by the relay
		if after := record("after a refusal"); received(after) != 1 {
			t.Fatal("a refused event stopped direct delivery")
		}

		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		done <- nil
		stopped := record("relay stopped")
		if received(stopped) != 0 || pending(t, ob) != 2 { // with the parked one
			t.Fatalf("relay stopped: received %d, %d in the table", received(stopped), pending(t, ob))
		}
	})
}
