package sqldb

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"regexp"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// validTable limits version table names to plain identifiers, because goose
// pastes the name into its SQL unquoted.
var validTable = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Migrate applies the embedded goose migrations in fsys (a directory of
// NNNNN_name.sql files, root of fsys) using goose.NewProvider with its own
// version table named table (e.g. "users_schema_version") so several
// services can share one database. Idempotent; safe to call on every start.
// Use goose's sqlite3 / postgres dialects. Log nothing itself; return an
// error wrapped with the table name.
//
// On PostgreSQL, concurrent Migrate calls for the same table (several
// replicas starting at once) are serialised with a session advisory lock
// whose key is derived from table, so different services do not wait for
// each other. On SQLite the single writer connection, which goose holds for
// the whole run, serialises them within a process.
func Migrate(ctx context.Context, db *DB, fsys fs.FS, table string) error {
	if err := migrate(ctx, db, fsys, table); err != nil {
		return fmt.Errorf("sqldb: migrate %s: %w", table, err)
	}
	return nil
}

func migrate(ctx context.Context, db *DB, fsys fs.FS, table string) error {
	if !validTable.MatchString(table) {
		return errors.New("version table name must be a plain SQL identifier")
	}
	if fsys == nil {
		// goose would treat nil as "no migrations" and fail with a vaguer
		// message.
		return errors.New("no migrations file system given")
	}
	opts := []goose.ProviderOption{
		goose.WithTableName(table),
		// Go migrations registered globally (goose.AddMigration) belong to
		// whichever package registered them; never mix them into another
		// service's set.
		goose.WithDisableGlobalRegistry(true),
		// Logging is the caller's job; goose only logs when verbose, but
		// make sure nothing reaches the standard logger.
		goose.WithSlog(slog.New(slog.DiscardHandler)),
	}
	var dialect goose.Dialect
	switch db.Dialect {
	case SQLite:
		dialect = goose.DialectSQLite3
	case Postgres:
		dialect = goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker(
			lock.WithLockID(migrationLockID(table)),
			// Poll every second for up to 5 minutes: the default 5 s
			// interval would slow down every start that has to wait.
			lock.WithLockTimeout(1, 300),
			lock.WithUnlockTimeout(1, 60),
		)
		if err != nil {
			return fmt.Errorf("create migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	default:
		return fmt.Errorf("unknown dialect %q", db.Dialect)
	}
	// Migrations run on the writer: on SQLite it is the only connection
	// allowed to write, and goose keeps one connection for the whole run.
	// The provider is deliberately not closed: its Close closes the *sql.DB.
	p, err := goose.NewProvider(dialect, db.W, fsys, opts...)
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// migrationLockID derives a PostgreSQL advisory lock key from the version
// table name, offset from goose's default key space by a prefix.
func migrationLockID(table string) int64 {
	return int64(crc32.ChecksumIEEE([]byte("reel/sqldb/migrate:" + table)))
}
