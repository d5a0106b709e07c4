package sqldb_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

// liteConn opens a SQLite database with a table t(id, v) of three rows and
// returns one writer connection of it.
func liteConn(t *testing.T) (*sqldb.DB, *sql.Conn) {
	t.Helper()
	ctx := t.Context()
	db := open(t, sqldbtest.SQLiteURL(t), sqldb.Options{})
	c, err := db.W.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.ExecContext(ctx, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if _, err := c.ExecContext(ctx, "INSERT INTO t (id, v) VALUES ($1, $2)", i, fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
	}
	return db, c
}

func cacheStats(t *testing.T, c *sql.Conn) (prepared, held int) {
	t.Helper()
	prepared, held, err := sqldb.CacheStats(c)
	if err != nil {
		t.Fatal(err)
	}
	return prepared, held
}

func readV(ctx context.Context, t *testing.T, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id int) string {
	t.Helper()
	var v string
	if err := q.QueryRowContext(ctx, "SELECT v FROM t WHERE id = $1", id).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// A query run again on a connection runs its prepared statement: nothing
// is prepared the second time, and the answers are the same.
func TestStatementsArePreparedOnce(t *testing.T) {
	ctx := t.Context()
	_, c := liteConn(t)
	if v := readV(ctx, t, c, 2); v != "v2" {
		t.Fatalf("v = %q", v)
	}
	before, _ := cacheStats(t, c)
	for i := range 20 {
		if v, want := readV(ctx, t, c, i%3+1), fmt.Sprint("v", i%3+1); v != want {
			t.Fatalf("v = %q, want %q", v, want)
		}
		if _, err := c.ExecContext(ctx, "UPDATE t SET v = $1 WHERE id = $2", "w", 99); err != nil {
			t.Fatal(err)
		}
	}
	after, held := cacheStats(t, c)
	if after != before+1 { // the UPDATE, once
		t.Errorf("prepared %d statements for 40 runs of two queries, want 1 (the UPDATE)", after-before)
	}
	if held < 2 {
		t.Errorf("the cache holds %d statements, want at least 2", held)
	}
}

// A query run again while the rows of its statement are still open (a
// lookup inside the loop over them) gets a statement of its own.
func TestStatementInUse(t *testing.T) {
	ctx := t.Context()
	_, c := liteConn(t)
	const q = "SELECT id, v FROM t WHERE id >= $1 ORDER BY id"
	rows, err := c.QueryContext(ctx, q, 1)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var (
			id int
			v  string
		)
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		var inner int
		if err := c.QueryRowContext(ctx, "SELECT COUNT(*) FROM ("+q+")", id).Scan(&inner); err != nil {
			t.Fatal(err)
		}
		// The same text as the open rows' statement.
		var again string
		if err := c.QueryRowContext(ctx, q, id).Scan(new(int), &again); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(v, again, inner))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	_ = rows.Close()
	if want := []string{"v1v13", "v2v22", "v3v31"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows = %v, want %v", got, want)
	}
	// And the statement is free again afterwards.
	before, _ := cacheStats(t, c)
	for range 3 {
		r, err := c.QueryContext(ctx, q, 1)
		if err != nil {
			t.Fatal(err)
		}
		_ = r.Close()
	}
	if after, _ := cacheStats(t, c); after != before {
		t.Errorf("prepared %d statements for a query whose rows were closed", after-before)
	}
}

// A connection keeps at most MaxCachedStmts statements, and a query whose
// statement it let go of still runs.
func TestStatementCacheBounded(t *testing.T) {
	ctx := t.Context()
	_, c := liteConn(t)
	for i := range sqldb.MaxCachedStmts + 50 {
		var n int
		if err := c.QueryRowContext(ctx, fmt.Sprintf("SELECT %d + $1", i), 1).Scan(&n); err != nil || n != i+1 {
			t.Fatalf("query %d: %d, %v", i, n, err)
		}
		if _, held := cacheStats(t, c); held > sqldb.MaxCachedStmts {
			t.Fatalf("the cache holds %d statements, more than %d", held, sqldb.MaxCachedStmts)
		}
	}
	var n int
	if err := c.QueryRowContext(ctx, "SELECT 0 + $1", 7).Scan(&n); err != nil || n != 7 {
		t.Fatalf("an evicted query: %d, %v", n, err)
	}
}

// A statement the cache lets go of while its rows are open keeps serving
// those rows; it is closed when they are, and its query runs again after.
func TestStatementEvictedWhileInUse(t *testing.T) {
	ctx := t.Context()
	_, c := liteConn(t)
	rows, err := c.QueryContext(ctx, "SELECT v FROM t ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatalf("no first row: %v", rows.Err())
	}
	for i := range sqldb.MaxCachedStmts + 10 {
		var n int
		if err := c.QueryRowContext(ctx, fmt.Sprintf("SELECT %d + $1", i), 1).Scan(&n); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
	}
	var got []string
	for ok := true; ok; ok = rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[v1 v2 v3]" {
		t.Fatalf("rows after eviction: %v", got)
	}
	if v := readV(ctx, t, c, 3); v != "v3" {
		t.Fatalf("the evicted query run again: %q", v)
	}
}

// A script of several statements runs as text and is not cached; a
// statement that failed is prepared again and runs.
func TestStatementCacheScriptsAndFailures(t *testing.T) {
	ctx := t.Context()
	_, c := liteConn(t)
	_, held := cacheStats(t, c)
	if _, err := c.ExecContext(ctx, "CREATE TABLE a (x INTEGER); CREATE TABLE b (y INTEGER);"); err != nil {
		t.Fatal(err)
	}
	if _, after := cacheStats(t, c); after != held {
		t.Errorf("a script was cached: %d statements, was %d", after, held)
	}
	if _, err := c.ExecContext(ctx, "INSERT INTO a (x) VALUES (1); INSERT INTO b (y) VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	var x, y int
	if err := c.QueryRowContext(ctx, "SELECT (SELECT x FROM a), (SELECT y FROM b)").Scan(&x, &y); err != nil || x != 1 || y != 2 {
		t.Fatalf("after the script: %d %d %v", x, y, err)
	}

	const ins = "INSERT INTO t (id, v) VALUES ($1, $2)"
	if _, err := c.ExecContext(ctx, ins, 1, "dup"); !sqldb.IsUniqueViolation(err) {
		t.Fatalf("duplicate insert: %v, want a unique violation", err)
	}
	if _, err := c.ExecContext(ctx, ins, 4, "v4"); err != nil {
		t.Fatalf("insert after a failure: %v", err)
	}
	if v := readV(ctx, t, c, 4); v != "v4" {
		t.Fatalf("v = %q", v)
	}
}

// Transactions run cached statements too, and a rolled-back one leaves
// nothing behind.
func TestStatementCacheInTransactions(t *testing.T) {
	ctx := t.Context()
	db, c := liteConn(t)
	_ = c.Close() // the writer has one connection
	errRollback := fmt.Errorf("roll back")
	for i := range 3 {
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "UPDATE t SET v = $1 WHERE id = $2", fmt.Sprint("tx", i), 1); err != nil {
				return err
			}
			if i == 2 {
				return errRollback
			}
			return nil
		})
		if i < 2 && err != nil {
			t.Fatal(err)
		}
	}
	if v := readV(ctx, t, db.R, 1); v != "tx1" {
		t.Fatalf("v = %q, want tx1 (the third transaction rolled back)", v)
	}
}
