package sqldbtest_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

func TestEngines(t *testing.T) {
	seen := map[string]string{}
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		name := t.Name()[strings.LastIndex(t.Name(), "/")+1:]
		seen[name] = url
		db, err := sqldb.Open(t.Context(), url, sqldb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = db.Close() }()
		if string(db.Dialect) != name {
			t.Errorf("subtest %s got a %s database", name, db.Dialect)
		}
		// Fresh and empty: the table does not exist yet.
		if _, err := db.W.ExecContext(t.Context(), "CREATE TABLE fresh (id INTEGER)"); err != nil {
			t.Errorf("database not empty: %v", err)
		}
	})
	if !strings.HasPrefix(seen["sqlite"], "sqlite:///") {
		t.Errorf("sqlite URL = %q, want an absolute sqlite:/// URL", seen["sqlite"])
	}
}

func TestOpen(t *testing.T) {
	migrations := fstest.MapFS{
		"00001_notes.sql": {Data: []byte("-- +goose Up\nCREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL);\n")},
	}
	var handles []*sqldb.DB
	t.Run("engines", func(t *testing.T) {
		sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
			handles = append(handles, db)
			if _, err := db.W.ExecContext(t.Context(), "INSERT INTO notes (id, body) VALUES ($1, $2)", 1, "migrated"); err != nil {
				t.Fatalf("migrations not applied: %v", err)
			}
		}, migrations, "notes_schema_version")
	})
	for _, db := range handles {
		if err := db.Ping(context.Background()); err == nil {
			t.Errorf("%s handle still open after its test ended", db.Dialect)
		}
	}
}

func TestPostgresURL(t *testing.T) {
	admin := os.Getenv(sqldbtest.EnvPostgresURL)
	var urls []string
	t.Run("fresh databases", func(t *testing.T) {
		a, b := sqldbtest.PostgresURL(t), sqldbtest.PostgresURL(t)
		if a == b {
			t.Fatalf("two calls gave the same URL %s", a)
		}
		urls = []string{a, b}
		for _, u := range urls {
			conn, err := pgx.Connect(t.Context(), u)
			if err != nil {
				t.Fatalf("connect to %s: %v", u, err)
			}
			// Leak the connection on purpose: the drop must still work.
			_ = conn
		}
	})
	if len(urls) != 2 {
		return // skipped or failed above
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	for _, u := range urls {
		name := u[strings.LastIndex(u, "/")+1:]
		name, _, _ = strings.Cut(name, "?")
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("database %s still exists after its test ended", name)
		}
	}
}
