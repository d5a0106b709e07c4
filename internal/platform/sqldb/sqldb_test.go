package sqldb_test

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

//go:embed testdata/migrations_a
var migrationsRaw embed.FS

// migrationsA creates widgets and widget_parts (with a foreign key and a
// composite primary key) in two migrations.
func migrationsA(t testing.TB) fs.FS {
	t.Helper()
	sub, err := fs.Sub(migrationsRaw, "testdata/migrations_a")
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// migrationsB is a second service's independent migration set.
var migrationsB = fstest.MapFS{
	"00001_gadgets.sql": {Data: []byte(`-- +goose Up
CREATE TABLE gadgets (id BIGINT PRIMARY KEY, label TEXT NOT NULL);
-- +goose Down
DROP TABLE gadgets;
`)},
}

const (
	tableA = "widgets_schema_version"
	tableB = "gadgets_schema_version"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func open(t *testing.T, url string, opts sqldb.Options) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(testCtx(t), url, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func pragma(t *testing.T, db *sql.DB, name string) string {
	t.Helper()
	var v string
	if err := db.QueryRowContext(testCtx(t), "PRAGMA "+name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

func count(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(testCtx(t), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func TestOpen(t *testing.T) {
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		ctx := testCtx(t)
		db := open(t, url, sqldb.Options{})
		if err := db.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}

		// $1 placeholders, a write on W and a read on R.
		if _, err := db.W.ExecContext(ctx, "CREATE TABLE things (id BIGINT PRIMARY KEY, v TEXT NOT NULL)"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.W.ExecContext(ctx, "INSERT INTO things (id, v) VALUES ($1, $2)", 1, "one"); err != nil {
			t.Fatal(err)
		}
		var v string
		if err := db.R.QueryRowContext(ctx, "SELECT v FROM things WHERE id = $1", 1).Scan(&v); err != nil || v != "one" {
			t.Fatalf("read back = %q, %v", v, err)
		}

		switch {
		case strings.HasPrefix(url, "postgres"):
			if db.Dialect != sqldb.Postgres {
				t.Errorf("Dialect = %q", db.Dialect)
			}
			if db.W == db.R {
				t.Fatal("on PostgreSQL too W and R must be different pools")
			}
			readers := sqldb.PostgresDefaultMaxOpen(runtime.GOMAXPROCS(0))
			if got := db.R.Stats().MaxOpenConnections; got != readers {
				t.Errorf("reader MaxOpenConnections = %d, want %d", got, readers)
			}
			if got, want := db.W.Stats().MaxOpenConnections, sqldb.PostgresWriters(readers); got != want {
				t.Errorf("writer MaxOpenConnections = %d, want %d", got, want)
			}
			// The queue's pool is a third, and opens nothing until used.
			if db.Q == db.W || db.Q == db.R {
				t.Fatal("on PostgreSQL the queue must have a pool of its own")
			}
			if got, want := db.Q.Stats().MaxOpenConnections, sqldb.PostgresQueueConns(readers); got != want {
				t.Errorf("queue MaxOpenConnections = %d, want %d", got, want)
			}
			if got := db.Q.Stats().OpenConnections; got != 0 {
				t.Errorf("the unused queue pool holds %d connections", got)
			}
		default:
			if db.Dialect != sqldb.SQLite {
				t.Errorf("Dialect = %q", db.Dialect)
			}
			if db.W == db.R {
				t.Fatal("on SQLite W and R must be different pools")
			}
			if got := db.W.Stats().MaxOpenConnections; got != 1 {
				t.Errorf("writer MaxOpenConnections = %d, want 1", got)
			}
			if db.Q != db.W {
				t.Fatal("on SQLite the queue must share the one writer")
			}
			if got, want := db.R.Stats().MaxOpenConnections, max(4, 2*runtime.GOMAXPROCS(0)); got != want {
				t.Errorf("reader MaxOpenConnections = %d, want %d", got, want)
			}
			for name, want := range map[string]string{
				"journal_mode": "wal", "busy_timeout": "10000", "foreign_keys": "1", "synchronous": "1", "query_only": "0",
			} {
				if got := pragma(t, db.W, name); got != want {
					t.Errorf("writer PRAGMA %s = %s, want %s", name, got, want)
				}
			}
			// Hold several reader connections at once so that the pragmas
			// are checked on more than one pooled connection.
			conns := make([]*sql.Conn, 3)
			for i := range conns {
				c, err := db.R.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = c.Close() }()
				conns[i] = c
			}
			for _, c := range conns {
				for name, want := range map[string]string{
					"journal_mode": "wal", "busy_timeout": "10000", "foreign_keys": "1", "query_only": "1",
				} {
					var got string
					if err := c.QueryRowContext(ctx, "PRAGMA "+name).Scan(&got); err != nil || got != want {
						t.Errorf("reader PRAGMA %s = %s (%v), want %s", name, got, err, want)
					}
				}
			}
			if _, err := db.R.ExecContext(ctx, "INSERT INTO things (id, v) VALUES (2, 'two')"); err == nil {
				t.Error("a write through R succeeded; readers must be query_only")
			}
			// A write transaction sees the writer's _txlock=immediate: a
			// second handle cannot start one while the first holds it.
			other := open(t, url, sqldb.Options{})
			tx, err := db.W.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			_, err = other.W.BeginTx(short, nil)
			cancel()
			if err == nil {
				t.Error("BEGIN on a second handle succeeded while the first held a write transaction; _txlock=immediate not in effect")
			}
			_ = tx.Rollback()
		}

		if err := db.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := db.Ping(ctx); err == nil {
			t.Error("Ping after Close succeeded")
		}
	})
}

func TestOpenMaxOpenConns(t *testing.T) {
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		db := open(t, url, sqldb.Options{MaxOpenConns: 7, QueueConns: 3})
		if got := db.R.Stats().MaxOpenConnections; got != 7 {
			t.Errorf("reader MaxOpenConnections = %d, want 7", got)
		}
		want := 1 // SQLite's one writer
		if db.Dialect == sqldb.Postgres {
			want = sqldb.PostgresWriters(7)
		}
		if got := db.W.Stats().MaxOpenConnections; got != want {
			t.Errorf("writer MaxOpenConnections = %d, want %d", got, want)
		}
		if db.Dialect == sqldb.Postgres {
			want = 3
		}
		if got := db.Q.Stats().MaxOpenConnections; got != want {
			t.Errorf("queue MaxOpenConnections = %d, want %d", got, want)
		}
	})
}

func TestPostgresDefaultMaxOpen(t *testing.T) {
	for _, c := range []struct{ procs, want int }{
		{1, 8}, {2, 8}, {3, 12}, {4, 14}, {64, 14},
	} {
		if got := sqldb.PostgresDefaultMaxOpen(c.procs); got != c.want {
			t.Errorf("PostgresDefaultMaxOpen(%d) = %d, want %d", c.procs, got, c.want)
		}
	}
	for _, c := range []struct{ readers, want int }{
		{1, 2}, {4, 2}, {8, 4}, {12, 6}, {14, 6}, {100, 6},
	} {
		if got := sqldb.PostgresWriters(c.readers); got != c.want {
			t.Errorf("PostgresWriters(%d) = %d, want %d", c.readers, got, c.want)
		}
	}
}

func TestOpenSQLiteURLForms(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // for the relative forms
	for _, tc := range []struct{ url, file string }{
		{"sqlite://" + dir + "/abs/deeper/a.db", dir + "/abs/deeper/a.db"},
		{"sqlite://rel/b.db", dir + "/rel/b.db"},
		{"sqlite://" + dir + "/q/c.db?_pragma=cache_size(-4000)", dir + "/q/c.db"},
		{"file:" + dir + "/file/d.db", dir + "/file/d.db"},
		{"file://" + dir + "/file2/e.db", dir + "/file2/e.db"},
		{"file:" + dir + "/file%20space/f.db?cache=private", dir + "/file space/f.db"},
		{dir + "/bare/g.db", dir + "/bare/g.db"},
		{"bare-rel/h.sqlite", dir + "/bare-rel/h.sqlite"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			db := open(t, tc.url, sqldb.Options{})
			if db.Dialect != sqldb.SQLite {
				t.Fatalf("Dialect = %q", db.Dialect)
			}
			if _, err := db.W.ExecContext(testCtx(t), "CREATE TABLE x (id INTEGER)"); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(tc.file); err != nil {
				t.Fatalf("database file: %v", err)
			}
			if got := count(t, db.R, "x"); got != 0 {
				t.Fatalf("count = %d", got)
			}
			// The settings reach the connections whatever the URL form.
			if got := pragma(t, db.W, "journal_mode"); got != "wal" {
				t.Errorf("writer journal_mode = %s", got)
			}
			if got := pragma(t, db.W, "foreign_keys"); got != "1" {
				t.Errorf("writer foreign_keys = %s", got)
			}
			if got := pragma(t, db.R, "query_only"); got != "1" {
				t.Errorf("reader query_only = %s", got)
			}
		})
	}
}

func TestOpenRejects(t *testing.T) {
	ctx := testCtx(t)
	for _, url := range []string{
		"mysql://root:s3cret@localhost/db",
		"nonsense",
		"/tmp/no-extension",
		":memory:",
		"sqlite://:memory:",
		"file::memory:",
		"file:" + filepath.Join(t.TempDir(), "m.db") + "?mode=memory",
		// Nothing listens on port 1: the ping must fail, and the error
		// must not show the password.
		"postgres://user:s3cret@127.0.0.1:1/db?connect_timeout=5",
	} {
		db, err := sqldb.Open(ctx, url, sqldb.Options{})
		if err == nil {
			_ = db.Close()
			t.Errorf("Open(%q) succeeded", url)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) error leaks the password: %v", url, err)
		}
		if !strings.HasPrefix(err.Error(), "sqldb: ") {
			t.Errorf("Open(%q) error lacks context: %v", url, err)
		}
	}
}

// TestConcurrentWriters hammers the writer from many goroutines, and from a
// second handle on the same database, while readers read. On SQLite none of
// it may fail with SQLITE_BUSY ("database is locked").
func TestConcurrentWriters(t *testing.T) {
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		ctx := testCtx(t)
		db := open(t, url, sqldb.Options{})
		if err := sqldb.Migrate(ctx, db, migrationsA(t), tableA); err != nil {
			t.Fatal(err)
		}
		// A second handle, as a second service sharing the file would
		// have: its writer competes with the first for SQLite's lock.
		other := open(t, url, sqldb.Options{})

		const writers, perWriter = 20, 25
		var nextID atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, writers*perWriter)
		for w := range writers {
			handle := db
			if w%4 == 3 {
				handle = other
			}
			wg.Go(func() {
				for range perWriter {
					err := handle.Tx(ctx, func(tx *sql.Tx) error {
						// Read then write: the pattern that fails with
						// SQLITE_BUSY under deferred transactions.
						var n int
						if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM widgets").Scan(&n); err != nil {
							return err
						}
						id := nextID.Add(1)
						_, err := tx.ExecContext(ctx, "INSERT INTO widgets (id, name) VALUES ($1, $2)", id, fmt.Sprint("w", id, "-", n))
						return err
					})
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		stop := make(chan struct{})
		var readers sync.WaitGroup
		var reads atomic.Int64
		for range 4 {
			readers.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					var n int
					if err := db.R.QueryRowContext(ctx, "SELECT count(*) FROM widgets").Scan(&n); err != nil {
						errs <- fmt.Errorf("reader: %w", err)
						return
					}
					reads.Add(1)
				}
			})
		}
		wg.Wait()
		close(stop)
		readers.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent write: %v", err)
		}
		if got := count(t, db.R, "widgets"); got != writers*perWriter {
			t.Errorf("%d rows, want %d", got, writers*perWriter)
		}
		t.Logf("%d transactions, %d concurrent reads", writers*perWriter, reads.Load())
	})
}

func TestRedacted(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://reel:s3cret@db.example:5432/reel?sslmode=disable": "postgres://reel:xxxxx@db.example:5432/reel?sslmode=disable",
		"postgresql://reel:p%40ss%2Fs3cret@db/reel":                   "postgresql://reel:xxxxx@db/reel",
		"postgres://reel@db/reel":                                     "postgres://reel@db/reel",
		"postgres://db/reel?user=reel&password=s3cret":                "postgres://db/reel?password=xxxxx&user=reel",
		"host=db user=reel password=s3cret dbname=reel":               "host=db user=reel password=xxxxx dbname=reel",
		"host=db password='s3 cret' dbname=reel":                      "host=db password=xxxxx dbname=reel",
		"postgres://reel:s3cret%zz@db/reel":                           "postgres://reel:xxxxx@db/reel",
		"sqlite:///var/lib/reel/reel.db":                              "sqlite:///var/lib/reel/reel.db",
		"/var/lib/reel/reel.db":                                       "/var/lib/reel/reel.db",
		"file:reel.db?mode=rwc":                                       "file:reel.db?mode=rwc",
		"":                                                            "",
	} {
		got := sqldb.Redacted(in)
		if got != want {
			t.Errorf("Redacted(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(got, "s3") {
			t.Errorf("Redacted(%q) = %q leaks the password", in, got)
		}
	}
}
