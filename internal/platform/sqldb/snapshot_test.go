package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

// A snapshot taken by a second handle (as `reel backup` does beside a
// running server) while the first commits transactions of ten rows holds
// whole transactions only, and is a sound database of its own.
func TestSnapshotWhileWriting(t *testing.T) {
	ctx := testCtx(t)
	url := sqldbtest.SQLiteURL(t)
	live := open(t, url, sqldb.Options{})
	if _, err := live.W.ExecContext(ctx, "CREATE TABLE things (id BIGINT PRIMARY KEY, v TEXT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	const batch = 10
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var written int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for id := 0; ; {
			select {
			case <-stop:
				return
			default:
			}
			err := live.Tx(ctx, func(tx *sql.Tx) error {
				for range batch {
					if _, err := tx.ExecContext(ctx, "INSERT INTO things (id, v) VALUES ($1, $2)", id, "x"); err != nil {
						return err
					}
					id++
				}
				return nil
			})
			if err != nil {
				t.Error(err)
				return
			}
			written = id
		}
	}()

	other := open(t, url, sqldb.Options{})
	dir := t.TempDir()
	var counts []int
	for i := range 5 {
		path := filepath.Join(dir, "snap"+string(rune('a'+i))+".db")
		if err := other.SnapshotTo(ctx, path); err != nil {
			t.Fatal(err)
		}
		snap := open(t, "sqlite://"+path, sqldb.Options{})
		if got := pragma(t, snap.R, "integrity_check"); got != "ok" {
			t.Fatalf("integrity_check of the snapshot: %s", got)
		}
		n := count(t, snap.R, "things")
		if n%batch != 0 {
			t.Fatalf("the snapshot has %d rows: part of a transaction", n)
		}
		counts = append(counts, n)
		if err := other.SnapshotTo(ctx, path); err == nil {
			t.Fatal("a snapshot overwrote an existing file")
		}
	}
	close(stop)
	wg.Wait()
	if counts[len(counts)-1] > written {
		t.Fatalf("snapshots %v, but only %d rows written", counts, written)
	}
	t.Logf("snapshot row counts %v of %d written", counts, written)
}

func TestSQLiteFile(t *testing.T) {
	for url, want := range map[string]string{
		"sqlite:///var/lib/reel/reel.db": "/var/lib/reel/reel.db",
		"sqlite://data/reel.db?x=1":      "data/reel.db",
		"data/reel.db":                   "data/reel.db",
		"file:/tmp/a%20b.db?mode=rwc":    "/tmp/a b.db",
	} {
		if got, err := sqldb.SQLiteFile(url); err != nil || got != want {
			t.Errorf("SQLiteFile(%q) = %q, %v; want %q", url, got, err, want)
		}
	}
	if _, err := sqldb.SQLiteFile("postgres://u:p@h/db"); !errors.Is(err, sqldb.ErrNotSQLite) {
		t.Errorf("postgres URL: %v", err)
	}
	if _, err := sqldb.SQLiteFile("mysql://x"); err == nil {
		t.Error("mysql URL accepted")
	}
}

func TestSnapshotRefusedOnPostgres(t *testing.T) {
	url := sqldbtest.PostgresURL(t)
	db := open(t, url, sqldb.Options{})
	if err := db.SnapshotTo(context.Background(), filepath.Join(t.TempDir(), "x.db")); !errors.Is(err, sqldb.ErrNotSQLite) {
		t.Fatalf("SnapshotTo on PostgreSQL: %v", err)
	}
}
