package sqldb_test

import (
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

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
