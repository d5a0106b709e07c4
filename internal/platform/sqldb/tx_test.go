package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

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
