// Package sqldbtest gives database tests a fresh, empty database on every
// engine the project supports, so that each test proves its SQL on SQLite
// and on PostgreSQL alike.
//
// The PostgreSQL server comes from the environment variable
// REEL_TEST_POSTGRES_URL, which scripts/pg.sh (sourced by scripts/test.sh)
// sets after starting a throwaway cluster. The URL's user must be allowed to
// CREATE DATABASE; every test gets a database of its own, dropped when the
// test ends, so tests can run in parallel without seeing each other's rows.
package sqldbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reel-video/reel/internal/platform/sqldb"
)

// EnvPostgresURL names the environment variable holding the URL of the test
// PostgreSQL server.
const EnvPostgresURL = "REEL_TEST_POSTGRES_URL"

// notAvailable is the skip message when no server is configured. It is
// shouted because a skipped PostgreSQL run means half the SQL went untested.
const notAvailable = "POSTGRESQL NOT AVAILABLE: set " + EnvPostgresURL + " or run scripts/test.sh"

// adminTimeout bounds CREATE/DROP DATABASE, so a hung server fails the test
// rather than the whole test binary's timeout.
const adminTimeout = 30 * time.Second

// Engines runs fn as subtests "sqlite" and "postgres", each with a fresh,
// empty database URL.
//
// SQLite: a file in t.TempDir(). PostgreSQL: from env REEL_TEST_POSTGRES_URL
// (a URL to a server where the user may CREATE DATABASE); creates a uniquely
// named database per call, drops it (WITH (FORCE)) in t.Cleanup. If
// REEL_TEST_POSTGRES_URL is empty: when env CI=true the postgres subtest
// FAILS with a clear message; otherwise it is skipped with a loud notice.
func Engines(t *testing.T, fn func(t *testing.T, url string)) {
	t.Helper()
	t.Run(string(sqldb.SQLite), func(t *testing.T) {
		fn(t, SQLiteURL(t))
	})
	t.Run(string(sqldb.Postgres), func(t *testing.T) {
		u := PostgresURL(t)
		if u == "" {
			return
		}
		fn(t, u)
	})
}

// Open is Engines + sqldb.Open + Migrate for the given migrations; the
// handle is closed at cleanup. migrations may be nil to get an empty
// database.
func Open(t *testing.T, fn func(t *testing.T, db *sqldb.DB), migrations fs.FS, table string) {
	t.Helper()
	Engines(t, func(t *testing.T, url string) {
		t.Helper()
		fn(t, OpenURL(t, url, migrations, table))
	})
}

// OpenURL opens url with sqldb.Open, applies migrations (unless nil) with
// sqldb.Migrate and closes the handle at cleanup. It is the building block
// of Open, for tests that get their URLs from PostgresURL or SQLiteURL.
func OpenURL(t testing.TB, url string, migrations fs.FS, table string) *sqldb.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	db, err := sqldb.Open(ctx, url, sqldb.Options{})
	if err != nil {
		t.Fatalf("sqldbtest: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("sqldbtest: %v", err)
		}
	})
	if migrations != nil {
		if err := sqldb.Migrate(ctx, db, migrations, table); err != nil {
			t.Fatalf("sqldbtest: %v", err)
		}
	}
	return db
}

// SQLiteURL returns the URL of a fresh SQLite database file in t.TempDir().
func SQLiteURL(t testing.TB) string {
	t.Helper()
	// t.TempDir is absolute, so this is the sqlite:///abs/path form.
	return "sqlite://" + filepath.Join(t.TempDir(), "test.db")
}

// PostgresURL returns a fresh database URL on the test server, or ""
// (skipping/failing like Engines) — for tests that need several databases.
// With a real *testing.T the skip or failure stops the test, so "" is only
// ever seen by callers that pass a testing.TB which does not stop.
func PostgresURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvPostgresURL)
	if admin == "" {
		if inCI() {
			t.Fatal("sqldbtest: " + EnvPostgresURL + " is empty but CI is set: the PostgreSQL tests must run in CI " +
				"(source scripts/pg.sh and call pg_start before go test, as scripts/test.sh does)")
			return ""
		}
		warnOnce.Do(func() {
			fmt.Fprintf(os.Stderr, "\n*** sqldbtest: %s; PostgreSQL subtests are SKIPPED ***\n\n", notAvailable)
		})
		t.Skip(notAvailable)
		return ""
	}
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("sqldbtest: %s=%s is not a postgres:// URL", EnvPostgresURL, sqldb.Redacted(admin))
		return ""
	}

	name := databaseName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if err := adminExec(ctx, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("sqldbtest: create test database on %s: %v", sqldb.Redacted(admin), err)
		return ""
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		// FORCE ends connections a test leaked, which would otherwise
		// make the drop fail and leave the database behind.
		if err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("sqldbtest: drop test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

var warnOnce sync.Once

// inCI reports whether env CI is true (CI=true, as CI systems set it, or
// any other spelling strconv.ParseBool accepts as true).
func inCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// adminExec runs one statement on the admin URL's database over a
// connection of its own (CREATE/DROP DATABASE cannot run in a transaction,
// and must not run from the database being dropped).
func adminExec(ctx context.Context, admin, stmt string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	return nil
}

// databaseName makes a unique database name that still tells, in pg_stat
// or a leaked database list, which test created it.
func databaseName(testName string) string {
	var b strings.Builder
	b.WriteString("reel_t_")
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 40 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(rnd[:]))
	return b.String() // at most 40+1+12 = 53 bytes, under PostgreSQL's 63
}
