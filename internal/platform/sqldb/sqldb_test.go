package sqldb_test

import (
	"context"
	"database/sql"
	"embed"
	"errors"
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

	"github.com/jackc/pgx/v5/pgconn"

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
		db := open(t, url, sqldb.Options{MaxOpenConns: 7})
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

func maxVersion(t *testing.T, db *sqldb.DB, table string) int64 {
	t.Helper()
	var v int64
	if err := db.R.QueryRowContext(testCtx(t), "SELECT max(version_id) FROM "+table).Scan(&v); err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	return v
}

func TestMigrate(t *testing.T) {
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		ctx := testCtx(t)
		db := open(t, url, sqldb.Options{})

		// Twice each, interleaved: the second run must be a no-op, and
		// each set only sees its own version table.
		for range 2 {
			if err := sqldb.Migrate(ctx, db, migrationsA(t), tableA); err != nil {
				t.Fatalf("Migrate A: %v", err)
			}
			if err := sqldb.Migrate(ctx, db, migrationsB, tableB); err != nil {
				t.Fatalf("Migrate B: %v", err)
			}
		}
		if got := maxVersion(t, db, tableA); got != 2 {
			t.Errorf("%s at version %d, want 2", tableA, got)
		}
		if got := maxVersion(t, db, tableB); got != 1 {
			t.Errorf("%s at version %d, want 1", tableB, got)
		}
		// Each migration is recorded once, plus goose's version 0 row.
		if got := count(t, db.R, tableA); got != 3 {
			t.Errorf("%s has %d rows, want 3", tableA, got)
		}
		if _, err := db.W.ExecContext(ctx, "INSERT INTO widgets (id, name) VALUES (1, 'w')"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.W.ExecContext(ctx, "INSERT INTO widget_parts (widget_id, part) VALUES (1, 'p')"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.W.ExecContext(ctx, "INSERT INTO gadgets (id, label) VALUES (1, 'g')"); err != nil {
			t.Fatal(err)
		}

		// A later release adds a migration: only it runs.
		grown := fstest.MapFS{}
		if err := fs.WalkDir(migrationsA(t), ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := fs.ReadFile(migrationsA(t), path)
			grown[path] = &fstest.MapFile{Data: data}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		grown["00003_widget_color.sql"] = &fstest.MapFile{Data: []byte(`-- +goose Up
ALTER TABLE widgets ADD COLUMN color TEXT NOT NULL DEFAULT 'red';
-- +goose Down
ALTER TABLE widgets DROP COLUMN color;
`)}
		if err := sqldb.Migrate(ctx, db, grown, tableA); err != nil {
			t.Fatalf("Migrate grown A: %v", err)
		}
		if got := maxVersion(t, db, tableA); got != 3 {
			t.Errorf("%s at version %d, want 3", tableA, got)
		}
		var color string
		if err := db.R.QueryRowContext(ctx, "SELECT color FROM widgets WHERE id = $1", 1).Scan(&color); err != nil || color != "red" {
			t.Errorf("color = %q, %v", color, err)
		}
	})
}

func TestMigrateErrors(t *testing.T) {
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		ctx := testCtx(t)
		db := open(t, url, sqldb.Options{})

		bad := fstest.MapFS{
			"00001_ok.sql":  {Data: []byte("-- +goose Up\nCREATE TABLE ok_table (id INTEGER);\n")},
			"00002_bad.sql": {Data: []byte("-- +goose Up\nCREATE TABLE broken (;\n")},
		}
		err := sqldb.Migrate(ctx, db, bad, "bad_schema_version")
		if err == nil || !strings.Contains(err.Error(), "bad_schema_version") {
			t.Fatalf("Migrate with a broken migration: err = %v, want one naming the table", err)
		}
		// The good migration before the broken one stays applied, and the
		// broken one's transaction left nothing behind.
		if got := maxVersion(t, db, "bad_schema_version"); got != 1 {
			t.Errorf("version after failure = %d, want 1", got)
		}

		for _, table := range []string{"", "x; DROP TABLE y", "1abc", "schema.table"} {
			if err := sqldb.Migrate(ctx, db, migrationsB, table); err == nil {
				t.Errorf("Migrate with table %q succeeded", table)
			}
		}
		if err := sqldb.Migrate(ctx, db, fstest.MapFS{}, "empty_schema_version"); err == nil {
			t.Error("Migrate with no migrations succeeded")
		}
		if err := sqldb.Migrate(ctx, db, nil, "nil_schema_version"); err == nil {
			t.Error("Migrate with nil fsys succeeded")
		}
	})
}

func TestMigrateConcurrent(t *testing.T) {
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		ctx := testCtx(t)
		db1 := open(t, url, sqldb.Options{})
		db2 := open(t, url, sqldb.Options{})
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 6 {
			wg.Go(func() {
				// On PostgreSQL spread one service's replicas over two
				// handles, which the advisory lock must serialise. On
				// SQLite one handle's single writer serialises them; the
				// other handle migrates a different service meanwhile.
				db, fsys, table := db1, migrationsA(t), tableA
				if i%2 == 1 {
					if db1.Dialect == sqldb.Postgres {
						db = db2
					} else {
						db, fsys, table = db2, fs.FS(migrationsB), tableB
					}
				}
				errs <- sqldb.Migrate(ctx, db, fsys, table)
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("concurrent Migrate: %v", err)
			}
		}
		if got := count(t, db1.R, tableA); got != 3 {
			t.Errorf("%s has %d rows, want 3 (each migration applied once)", tableA, got)
		}
	})
}

var errBoom = errors.New("boom")

func TestTx(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		insert := func(id int, name string) func(tx *sql.Tx) error {
			return func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, "INSERT INTO widgets (id, name) VALUES ($1, $2)", id, name)
				return err
			}
		}
		exists := func(id int) bool {
			var n int
			if err := db.R.QueryRowContext(ctx, "SELECT count(*) FROM widgets WHERE id = $1", id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n == 1
		}

		t.Run("commit", func(t *testing.T) {
			if err := db.Tx(ctx, insert(1, "one")); err != nil {
				t.Fatal(err)
			}
			if !exists(1) {
				t.Error("committed row missing")
			}
		})

		t.Run("error rolls back", func(t *testing.T) {
			err := db.Tx(ctx, func(tx *sql.Tx) error {
				if err := insert(2, "two")(tx); err != nil {
					return err
				}
				return errBoom
			})
			if err != errBoom { //nolint:errorlint // fn's error must come back unchanged
				t.Fatalf("Tx = %v, want errBoom itself", err)
			}
			if exists(2) {
				t.Error("row of a failed transaction was committed")
			}
		})

		t.Run("panic rolls back and re-panics", func(t *testing.T) {
			var recovered any
			func() {
				defer func() { recovered = recover() }()
				_ = db.Tx(ctx, func(tx *sql.Tx) error {
					if err := insert(3, "three")(tx); err != nil {
						t.Error(err)
					}
					panic("kaboom")
				})
			}()
			if recovered != "kaboom" {
				t.Fatalf("recovered %v, want the original panic value", recovered)
			}
			if exists(3) {
				t.Error("row of a panicking transaction was committed")
			}
			// The writer must be free again (on SQLite it is the only
			// connection, so a leaked transaction would hang this).
			short, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := db.Tx(short, insert(4, "four")); err != nil {
				t.Fatalf("Tx after a panic: %v", err)
			}
		})

		t.Run("read then write", func(t *testing.T) {
			err := db.Tx(ctx, func(tx *sql.Tx) error {
				var n int
				if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM widgets").Scan(&n); err != nil {
					return err
				}
				return insert(100+n, fmt.Sprint("n", n))(tx)
			})
			if err != nil {
				t.Fatal(err)
			}
		})

		t.Run("database errors are returned", func(t *testing.T) {
			err := db.Tx(ctx, insert(1, "duplicate id"))
			if !sqldb.IsUniqueViolation(err) {
				t.Fatalf("Tx = %v, want a unique violation", err)
			}
		})
	}, migrationsA(t), tableA)
}

// serializationFailure is what pgx returns when PostgreSQL gives up on a
// transaction because of a concurrent one.
var serializationFailure = &pgconn.PgError{Code: "40001", Message: "could not serialize access"}

func TestTxRetry(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		pg := db.Dialect == sqldb.Postgres

		t.Run("retried once", func(t *testing.T) {
			attempts := 0
			err := db.Tx(ctx, func(tx *sql.Tx) error {
				attempts++
				if attempts == 1 {
					return fmt.Errorf("wrapped: %w", serializationFailure)
				}
				return nil
			})
			switch {
			case pg && (err != nil || attempts != 2):
				t.Errorf("PostgreSQL: Tx = %v after %d attempts, want success after 2", err, attempts)
			case !pg && (err == nil || attempts != 1):
				t.Errorf("SQLite: Tx = %v after %d attempts, want the error after 1 (no retries)", err, attempts)
			}
		})

		t.Run("gives up", func(t *testing.T) {
			attempts := 0
			err := db.Tx(ctx, func(tx *sql.Tx) error {
				attempts++
				return &pgconn.PgError{Code: "40P01", Message: "deadlock detected"}
			})
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "40P01" {
				t.Fatalf("Tx = %v, want the deadlock error", err)
			}
			if want := map[bool]int{true: 4, false: 1}[pg]; attempts != want {
				t.Errorf("%d attempts, want %d", attempts, want)
			}
		})

		t.Run("other errors are not retried", func(t *testing.T) {
			attempts := 0
			_ = db.Tx(ctx, func(tx *sql.Tx) error {
				attempts++
				return &pgconn.PgError{Code: "23505"}
			})
			if attempts != 1 {
				t.Errorf("%d attempts, want 1", attempts)
			}
		})

		if !pg {
			return
		}
		t.Run("real serialization failure", func(t *testing.T) {
			if _, err := db.W.ExecContext(ctx, "INSERT INTO widgets (id, name) VALUES (1, 'counter')"); err != nil {
				t.Fatal(err)
			}
			attempts := 0
			err := db.Tx(ctx, func(tx *sql.Tx) error {
				attempts++
				if _, err := tx.ExecContext(ctx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
					return err
				}
				var name string
				if err := tx.QueryRowContext(ctx, "SELECT name FROM widgets WHERE id = 1").Scan(&name); err != nil {
					return err
				}
				if attempts == 1 {
					// Another connection changes the row after this
					// transaction took its snapshot, so the update below
					// must fail with 40001.
					if _, err := db.W.ExecContext(ctx, "UPDATE widgets SET name = name || '+other' WHERE id = 1"); err != nil {
						return err
					}
				}
				_, err := tx.ExecContext(ctx, "UPDATE widgets SET name = $1 WHERE id = 1", name+"+mine")
				return err
			})
			if err != nil {
				t.Fatalf("Tx: %v", err)
			}
			if attempts != 2 {
				t.Errorf("%d attempts, want 2", attempts)
			}
			var name string
			if err := db.R.QueryRowContext(ctx, "SELECT name FROM widgets WHERE id = 1").Scan(&name); err != nil {
				t.Fatal(err)
			}
			if name != "counter+other+mine" {
				t.Errorf("name = %q, want both updates applied in order", name)
			}
		})
	}, migrationsA(t), tableA)
}

func TestIsUniqueViolation(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		exec := func(q string, args ...any) error {
			_, err := db.W.ExecContext(ctx, q, args...)
			return err
		}
		if err := exec("INSERT INTO widgets (id, name) VALUES (1, 'a')"); err != nil {
			t.Fatal(err)
		}
		if err := exec("INSERT INTO widget_parts (widget_id, part) VALUES (1, 'p')"); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name   string
			err    error
			unique bool
		}{
			{"duplicate primary key", exec("INSERT INTO widgets (id, name) VALUES (1, 'b')"), true},
			{"duplicate unique column", exec("INSERT INTO widgets (id, name) VALUES (2, 'a')"), true},
			{"duplicate composite key", exec("INSERT INTO widget_parts (widget_id, part) VALUES (1, 'p')"), true},
			{"wrapped", fmt.Errorf("creating widget: %w", exec("INSERT INTO widgets (id, name) VALUES (1, 'c')")), true},
			{"foreign key", exec("INSERT INTO widget_parts (widget_id, part) VALUES (99, 'p')"), false},
			{"not null", exec("INSERT INTO widgets (id, name) VALUES (3, NULL)"), false},
			{"syntax", exec("INSERT INTO"), false},
			{"other error", errBoom, false},
			{"nil", nil, false},
		} {
			if tc.name != "nil" && tc.err == nil {
				t.Errorf("%s: statement succeeded, want an error", tc.name)
				continue
			}
			if got := sqldb.IsUniqueViolation(tc.err); got != tc.unique {
				t.Errorf("%s: IsUniqueViolation(%v) = %v, want %v", tc.name, tc.err, got, tc.unique)
			}
		}
	}, migrationsA(t), tableA)
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
