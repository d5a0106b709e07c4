package outbox_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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
