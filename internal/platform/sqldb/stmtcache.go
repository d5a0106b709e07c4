package sqldb

import (
	"context"
	"database/sql/driver"
	"strings"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// SQLite connections keep their prepared statements. modernc's driver
// prepares, runs and finalizes a statement for every query it is given as
// text, and parsing and planning were a large share of reel's CPU under
// load (docs/benchmarks.md). A cachingConn prepares each query text once
// and runs it again from then on, as pgx does on PostgreSQL on its own.
// Callers see nothing of it: they still pass SQL text to database/sql.

// maxCachedStmts bounds the statements one connection keeps (the least
// recently used goes first). Reel runs about two hundred distinct queries,
// most of them rarely; a statement takes a few KiB of SQLite's memory.
const maxCachedStmts = 128

// cachingConnector opens connections that keep their statements.
type cachingConnector struct{ driver.Connector }

func (c cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	lc, ok := conn.(liteConn)
	if !ok { // another driver version: run it as it is
		return conn, nil
	}
	cc := &cachingConn{liteConn: lc}
	cc.stmts, err = simplelru.NewLRU(maxCachedStmts, func(_ string, s *cachedStmt) { s.evicted() })
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return cc, nil
}

// liteConn is what modernc's connection implements and database/sql uses.
type liteConn interface {
	driver.Conn
	driver.ConnPrepareContext
	driver.ConnBeginTx
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

type liteStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// cachingConn is a liteConn whose ExecContext and QueryContext run cached
// statements. database/sql uses a connection from one goroutine at a time
// (rows are closed under the same lock), so it needs no lock of its own.
type cachingConn struct {
	liteConn
	stmts *simplelru.LRU[string, *cachedStmt]
	// prepared counts the statements prepared for the cache, for tests.
	prepared int
}

type cachedStmt struct {
	stmt liteStmt
	// busy is set while rows of the statement are open: a query run again
	// meanwhile (inside the loop over its rows) gets a statement of its own.
	busy bool
	// gone is set when the cache let go of the statement while it was
	// busy: it is closed when its rows are.
	gone bool
}

// evicted closes a statement the cache let go of, or marks it to be
// closed once its rows are.
func (s *cachedStmt) evicted() {
	if s.busy {
		s.gone = true
		return
	}
	_ = s.stmt.Close()
}

// release hands a statement back when its rows are closed.
func (s *cachedStmt) release() {
	s.busy = false
	if s.gone {
		_ = s.stmt.Close()
	}
}

// cacheable reports whether query is one statement: a script of several
// is run as text, as modernc runs it.
func cacheable(query string) bool {
	q := strings.TrimRight(strings.TrimSpace(query), "; \t\n")
	return q != "" && !strings.Contains(q, ";")
}

// stmt returns the cached statement for query, preparing it if needed; nil
// when query is not to be cached or its statement is in use.
func (c *cachingConn) stmt(ctx context.Context, query string) (*cachedStmt, error) {
	if s, ok := c.stmts.Get(query); ok {
		if s.busy {
			return nil, nil
		}
		return s, nil
	}
	if !cacheable(query) {
		return nil, nil
	}
	ds, err := c.liteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	ls, ok := ds.(liteStmt)
	if !ok {
		_ = ds.Close()
		return nil, nil
	}
	c.prepared++
	s := &cachedStmt{stmt: ls}
	c.stmts.Add(query, s)
	return s, nil
}

// failed drops a statement whose run failed: it is prepared again next
// time rather than trusted in whatever state the error left it.
func (c *cachingConn) failed(query string, s *cachedStmt) {
	if cur, ok := c.stmts.Peek(query); ok && cur == s {
		c.stmts.Remove(query)
	}
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.liteConn.ExecContext(ctx, query, args)
	}
	res, err := s.stmt.ExecContext(ctx, args)
	if err != nil {
		c.failed(query, s)
	}
	return res, err
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.liteConn.QueryContext(ctx, query, args)
	}
	rows, err := s.stmt.QueryContext(ctx, args)
	if err != nil {
		c.failed(query, s)
		return nil, err
	}
	s.busy = true
	done := s.release
	if lr, ok := rows.(liteRows); ok {
		return &cachedRows{liteRows: lr, done: done}, nil
	}
	return &plainRows{Rows: rows, done: done}, nil
}

// Unwrap returns the driver's connection (sqlite.Limit looks for it).
func (c *cachingConn) Unwrap() driver.Conn { return c.liteConn }

// Close closes the cached statements, then the connection.
func (c *cachingConn) Close() error {
	c.stmts.Purge()
	return c.liteConn.Close()
}

// liteRows is what modernc's rows implement: the column type methods are
// kept visible for sql.Rows.ColumnTypes.
type liteRows interface {
	driver.Rows
	driver.RowsColumnTypeDatabaseTypeName
	driver.RowsColumnTypeLength
	driver.RowsColumnTypeNullable
	driver.RowsColumnTypePrecisionScale
	driver.RowsColumnTypeScanType
}

// cachedRows hands its statement back when closed.
type cachedRows struct {
	liteRows
	done func()
}

func (r *cachedRows) Close() error {
	defer r.done()
	return r.liteRows.Close()
}

type plainRows struct {
	driver.Rows
	done func()
}

func (r *plainRows) Close() error {
	defer r.done()
	return r.Rows.Close()
}
