package sqldb

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// ErrNotSQLite is returned for a SQLite-only operation on another engine.
var ErrNotSQLite = errors.New("sqldb: not a SQLite database")

// SQLiteFile returns the file of a SQLite database URL (any form Open
// accepts), or ErrNotSQLite for a PostgreSQL URL.
func SQLiteFile(url string) (string, error) {
	if isPostgresURL(url) {
		return "", ErrNotSQLite
	}
	t, err := parseSQLite(url)
	if err != nil {
		return "", fmt.Errorf("sqldb: %s: %w", Redacted(url), err)
	}
	return t.path, nil
}

// SnapshotTo writes a consistent copy of a SQLite database to the new file
// path with VACUUM INTO. It reads in one transaction, so the copy is the
// database as of one commit, taken while the database is in use by this
// process or others: in WAL mode readers never block the writer, and the
// copy is compact and needs no WAL of its own. The file is fsynced.
func (db *DB) SnapshotTo(ctx context.Context, path string) error {
	if db.Dialect != SQLite {
		return ErrNotSQLite
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("sqldb: snapshot to %s: the file exists", path)
	}
	// The writer rather than a reader: readers are query_only, which
	// forbids writing the copy. VACUUM INTO outside a transaction takes
	// no write lock on the source.
	if _, err := db.W.ExecContext(ctx, "VACUUM INTO $1", path); err != nil {
		return fmt.Errorf("sqldb: snapshot to %s: %w", path, err)
	}
	// VACUUM INTO does not sync what it wrote.
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sqldb: snapshot to %s: %w", path, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sqldb: snapshot to %s: sync: %w", path, err)
	}
	return nil
}
