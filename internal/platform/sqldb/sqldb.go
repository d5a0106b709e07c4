// Package sqldb opens the project's SQL databases, runs their migrations and
// wraps transactions, so that every service works the same way on SQLite (the
// single-binary, zero-dependency setup) and on PostgreSQL (the scaled-out
// setup).
//
// All SQL in the project uses $1-style placeholders, which both the pgx and
// the modernc SQLite drivers accept, so services need no per-dialect query
// text for ordinary statements.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	neturl "net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	// The SQLite driver (pure Go, no cgo); it also provides the
	// *sqlite.Error type that IsUniqueViolation inspects.
	"modernc.org/sqlite"
)

// Dialect names the SQL engine behind a DB.
type Dialect string

// The supported engines.
const (
	// SQLite is the embedded engine (modernc.org/sqlite).
	SQLite Dialect = "sqlite"
	// Postgres is PostgreSQL through pgx.
	Postgres Dialect = "postgres"
)

// DB is a database handle: on SQLite a single writer connection beside a
// reader pool (SQLite allows one writer; serialising writes in Go avoids
// SQLITE_BUSY storms), on PostgreSQL a write pool, a read pool and the job
// queue's pool.
type DB struct {
	// W is for all writes and transactions. On SQLite it has exactly one
	// connection, so code must never use W while it holds a transaction
	// from it (for example from inside a Tx callback): that waits forever.
	W *sql.DB
	// R is for read-only queries. On SQLite its connections are opened with
	// query_only, so a write sent here fails instead of racing the writer.
	R *sql.DB
	// Q is the job queue's (River's): its fetches, completions, heartbeats
	// and cancellations. On PostgreSQL it is a pool of its own, so that the
	// queue's churn never makes the service's writes wait for a connection
	// of W (decision 0011); it opens no connection until River uses it. On
	// SQLite it is W, the single writer, which River's writes must queue
	// behind like everyone's.
	Q *sql.DB
	// Dialect tells which engine this is, for the rare query that must
	// differ between engines.
	Dialect Dialect
}

// Options tunes Open. The zero value is a good default.
type Options struct {
	// MaxOpenConns is the number of reader connections: PostgreSQL's read
	// pool, or SQLite's query-only connections; 0 picks a sensible default
	// (PostgreSQL: four per core, between 8 and 14, see
	// PostgresDefaultMaxOpen; SQLite: max(4, 2*GOMAXPROCS)). PostgreSQL's
	// write pool has half as many, 2 to 6 (PostgresWriters); the SQLite
	// writer always has exactly one connection.
	MaxOpenConns int
	// QueueConns is the size of PostgreSQL's job queue pool (Q); 0 picks
	// PostgresQueueConns. SQLite's queue shares its one writer.
	QueueConns int
}

const (
	// pgConnMaxIdleTime lets a pool shrink after a burst, so idle services
	// do not hold server connections (and their memory) forever.
	pgConnMaxIdleTime = 5 * time.Minute
	// sqliteBusyTimeoutMS is how long a SQLite connection waits for a lock
	// held by another connection (another handle or process on the same
	// file, or a checkpoint) before it reports SQLITE_BUSY.
	sqliteBusyTimeoutMS = 10000
)

// Open accepts "postgres://..." / "postgresql://..." (pgx via
// github.com/jackc/pgx/v5/stdlib), "sqlite:///abs/path.db",
// "sqlite://relative/path.db", "file:..." or a bare file path ending in .db
// (SQLite; .sqlite and .sqlite3 are accepted too). It creates the SQLite
// file's directory. It pings before returning.
//
// In-memory SQLite databases are refused: the writer and the reader pool are
// separate connections and would each see their own empty database.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	if opts.MaxOpenConns < 0 || opts.QueueConns < 0 {
		return nil, fmt.Errorf("sqldb: open %s: a pool size is negative (%d readers, %d for the queue)", Redacted(url), opts.MaxOpenConns, opts.QueueConns)
	}
	if isPostgresURL(url) {
		return openPostgres(ctx, url, opts)
	}
	target, err := parseSQLite(url)
	if err != nil {
		return nil, fmt.Errorf("sqldb: open %s: %w", Redacted(url), err)
	}
	return openSQLite(ctx, target, opts)
}

func isPostgresURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

func openPostgres(ctx context.Context, url string, opts Options) (*DB, error) {
	// ParseConfig rather than sql.Open("pgx", url) so that a malformed URL
	// is reported here, not at the first query.
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx's parse errors already redact the password.
		return nil, fmt.Errorf("sqldb: parse postgres url %s: %w", Redacted(url), err)
	}
	n := opts.MaxOpenConns
	if n == 0 {
		n = PostgresDefaultMaxOpen(runtime.GOMAXPROCS(0))
	}
	// Two pools, as on SQLite: reads (one statement each, most requests)
	// never wait for a connection behind the writes' transactions, which
	// hold theirs for several round trips (an upload's, a relay's).
	// The queue's pool is a third: River polls, completes and cancels
	// jobs on its own schedule, and on the write pool those statements
	// took the connections the requests' short writes (the read events'
	// batches, decision 0005) waited for.
	q := opts.QueueConns
	if q == 0 {
		q = PostgresQueueConns(n)
	}
	db := &DB{W: postgresPool(cfg, PostgresWriters(n)), R: postgresPool(cfg, n), Q: postgresPool(cfg, q), Dialect: Postgres}
	if err := db.Ping(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqldb: open %s: %w", Redacted(url), err)
	}
	return db, nil
}

// postgresPool opens a pool of at most n connections.
func postgresPool(cfg *pgx.ConnConfig, n int) *sql.DB {
	pool := stdlib.OpenDB(*cfg)
	pool.SetMaxOpenConns(n)
	// As many idle as open: database/sql's default of 2 idle connections
	// would make a busy service reconnect (TLS + auth) for most queries.
	pool.SetMaxIdleConns(n)
	pool.SetConnMaxIdleTime(pgConnMaxIdleTime)
	return pool
}

// PostgresDefaultMaxOpen is the size of the PostgreSQL read pool when none
// is given, for a process with procs cores: four connections per core, at
// least 8 and at most 14.
//
// A process keeps only a few queries in flight per core; more connections
// add server processes that compete for the cores rather than throughput
// (decision 0011). With the write pool (PostgresWriters) a process opens
// at most 20, which keeps a handful of services within PostgreSQL's
// default max_connections (100); the floor leaves room for slow queries
// on one-core machines.
func PostgresDefaultMaxOpen(procs int) int {
	return min(14, max(8, 4*procs))
}

// PostgresWriters is the size of the PostgreSQL write pool beside a read
// pool of readers: half as many, 2 to 6, since the writes (transactions of
// a few statements, the outbox relays' claims and deletes) are far fewer
// than the reads. A pool of their own keeps reads from waiting for a
// connection behind the writes' transactions (decision 0011).
func PostgresWriters(readers int) int {
	return min(6, max(2, readers/2))
}

// PostgresQueueConns is the size of the job queue's PostgreSQL pool beside
// a read pool of readers: as many as the writers (PostgresWriters), 2 to
// 6. River keeps a few statements in flight at once (a fetch per queue,
// the batched completions, the leader's maintenance, heartbeats); only
// the videos database's pool is ever used, and an unused one holds no
// connection.
func PostgresQueueConns(readers int) int {
	return PostgresWriters(readers)
}

// sqliteTarget is a parsed SQLite location.
type sqliteTarget struct {
	// path is the file system path, used to create the directory.
	path string
	// uri is the original "file:" URI (with its own query), or "" when the
	// database is given as a plain path.
	uri string
	// query holds parameters given with a sqlite:// URL or a bare path;
	// they are passed on to the driver.
	query string
}

var sqliteExts = []string{".db", ".sqlite", ".sqlite3"}

func parseSQLite(s string) (sqliteTarget, error) {
	switch {
	case strings.HasPrefix(s, "sqlite://"):
		// "sqlite:///abs" leaves "/abs" and "sqlite://rel" leaves "rel":
		// the host part is read as the start of a relative path, which is
		// what people mean when they write it.
		path, query, _ := strings.Cut(strings.TrimPrefix(s, "sqlite://"), "?")
		return checkSQLitePath(sqliteTarget{path: path, query: query})
	case strings.HasPrefix(s, "file:"):
		rest, query, _ := strings.Cut(strings.TrimPrefix(s, "file:"), "?")
		if strings.HasPrefix(rest, "//") {
			// file://host/path: SQLite allows only an empty host or
			// "localhost", and rejects anything else itself.
			rest = rest[2:]
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				rest = rest[i:]
			} else {
				rest = ""
			}
		}
		rest, _, _ = strings.Cut(rest, "#")
		// SQLite percent-decodes URI paths, so decode for MkdirAll too.
		path, err := neturl.PathUnescape(rest)
		if err != nil {
			return sqliteTarget{}, fmt.Errorf("bad file: URI path: %w", err)
		}
		if q, err := neturl.ParseQuery(query); err == nil && q.Get("mode") == "memory" {
			return sqliteTarget{}, errInMemory
		}
		return checkSQLitePath(sqliteTarget{path: path, uri: s})
	default:
		path, query, _ := strings.Cut(s, "?")
		lower := strings.ToLower(path)
		for _, ext := range sqliteExts {
			if strings.HasSuffix(lower, ext) {
				return checkSQLitePath(sqliteTarget{path: path, query: query})
			}
		}
		return sqliteTarget{}, errors.New(`unrecognised database URL: want "postgres://", "postgresql://", "sqlite://", "file:" or a file path ending in .db`)
	}
}

var errInMemory = errors.New("in-memory SQLite is not supported: the writer and the reader pool would each see a different empty database; use a file (in a temporary directory for tests)")

func checkSQLitePath(t sqliteTarget) (sqliteTarget, error) {
	if t.path == "" || t.path == ":memory:" || strings.HasPrefix(t.path, ":memory:") {
		return sqliteTarget{}, errInMemory
	}
	return t, nil
}

// dsn builds the driver DSN for the target with params added.
func (t sqliteTarget) dsn(params neturl.Values) string {
	if t.uri != "" {
		sep := "?"
		if strings.Contains(t.uri, "?") {
			sep = "&"
		}
		return t.uri + sep + params.Encode()
	}
	// A plain path (not a "file:" URI) is handed to SQLite as it is; the
	// driver splits the parameters off at the first '?'.
	q := params.Encode()
	if t.query != "" {
		q = t.query + "&" + q
	}
	return t.path + "?" + q
}

// writerParams are the DSN parameters of the writer connection. They are
// DSN parameters rather than statements run after Open because database/sql
// may open a fresh connection at any time (after a bad connection, say), and
// each new connection must get them.
func writerParams() neturl.Values {
	return neturl.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeoutMS),
			// WAL lets readers proceed while the writer writes.
			"journal_mode(WAL)",
			// SQLite does not enforce foreign keys unless asked, per
			// connection; PostgreSQL always does, and both engines must
			// behave the same.
			"foreign_keys(ON)",
			// NORMAL is durable against application crashes in WAL mode
			// and only risks the last commits on power loss, for far
			// fewer fsyncs.
			"synchronous(NORMAL)",
		},
		// BEGIN IMMEDIATE takes the write lock when the transaction starts.
		// With the default (DEFERRED) a transaction that reads first and
		// writes later can fail with SQLITE_BUSY at the write, which the
		// busy timeout cannot help with because SQLite refuses to wait
		// there (it would deadlock).
		"_txlock": {"immediate"},
	}
}

// readerParams are the DSN parameters of the reader connections.
// journal_mode is left out on purpose: WAL is a property of the file, set by
// the writer that Open opens first, and a reader has no business changing
// it. synchronous only affects writes.
func readerParams() neturl.Values {
	return neturl.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeoutMS),
			"foreign_keys(ON)",
			// Makes an accidental write through R fail loudly instead of
			// competing with the writer for the lock.
			"query_only(1)",
		},
	}
}

// openLite is sql.Open("sqlite", dsn) with connections that keep their
// prepared statements (cachingConnector).
func openLite(dsn string) (*sql.DB, error) {
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(cachingConnector{c}), nil
}

func openSQLite(ctx context.Context, t sqliteTarget, opts Options) (_ *DB, err error) {
	if dir := filepath.Dir(t.path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("sqldb: create directory for sqlite database %s: %w", t.path, err)
		}
	}

	w, err := openLite(t.dsn(writerParams()))
	if err != nil {
		return nil, fmt.Errorf("sqldb: open sqlite writer %s: %w", t.path, err)
	}
	// One writer connection: SQLite allows a single writer at a time, and
	// queueing writers in database/sql's pool is far cheaper and fairer than
	// letting them spin on the file lock.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	// Never retire the writer: reopening it would re-run the pragmas and
	// lose its page cache for nothing.
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	defer func() {
		if err != nil {
			_ = w.Close()
		}
	}()
	// Opening the writer first creates the file and switches it to WAL
	// before any reader connects.
	if err := w.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("sqldb: ping sqlite writer %s: %w", t.path, err)
	}
	// SQLite silently keeps the old journal mode where WAL is impossible
	// (some network file systems); the reader pool would then block the
	// writer, so fail early and say why.
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("sqldb: read journal mode of %s: %w", t.path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return nil, fmt.Errorf("sqldb: sqlite database %s is in journal mode %q, not WAL (is it on a network file system?)", t.path, mode)
	}

	r, err := openLite(t.dsn(readerParams()))
	if err != nil {
		return nil, fmt.Errorf("sqldb: open sqlite readers %s: %w", t.path, err)
	}
	n := opts.MaxOpenConns
	if n == 0 {
		n = max(4, 2*runtime.GOMAXPROCS(0))
	}
	r.SetMaxOpenConns(n)
	// Keep them all idle rather than the default 2, since each new SQLite
	// connection re-reads the schema and re-runs the pragmas.
	r.SetMaxIdleConns(n)
	db := &DB{W: w, R: r, Q: w, Dialect: SQLite}
	if err := r.PingContext(ctx); err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("sqldb: ping sqlite readers %s: %w", t.path, err)
	}
	return db, nil
}

// Close closes the writer, the readers and the queue's pool.
func (db *DB) Close() error {
	err := db.W.Close()
	if db.R != db.W {
		err = errors.Join(err, db.R.Close())
	}
	if db.Q != nil && db.Q != db.W {
		err = errors.Join(err, db.Q.Close())
	}
	if err != nil {
		return fmt.Errorf("sqldb: close %s database: %w", db.Dialect, err)
	}
	return nil
}

// Ping checks that the database answers, on the writer and the readers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.W.PingContext(ctx); err != nil {
		return fmt.Errorf("sqldb: ping %s writer: %w", db.Dialect, err)
	}
	if db.R != db.W {
		if err := db.R.PingContext(ctx); err != nil {
			return fmt.Errorf("sqldb: ping %s readers: %w", db.Dialect, err)
		}
	}
	return nil
}

// redactedPassword replaces passwords in Redacted, matching
// (*url.URL).Redacted.
const redactedPassword = "xxxxx"

var (
	// kvPassword matches password=... in key/value DSNs and in query
	// strings that url.Parse could not read.
	kvPassword = regexp.MustCompile(`(?i)\b((?:ssl)?password\s*=\s*)('[^']*'|[^\s&]*)`)
	// userinfoPassword matches scheme://user:password@ when url.Parse
	// failed; it is greedy up to the last '@' because over-redacting a log
	// line is harmless and leaking part of a password is not.
	userinfoPassword = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*://[^:@/]*:).*@`)
)

// Redacted returns url with the password replaced by "xxxxx", for logging.
// It also redacts password= and sslpassword= query or key/value parameters,
// and falls back to pattern matching when url does not parse, so that a
// malformed URL in an error message does not leak its password.
func Redacted(url string) string {
	u, err := neturl.Parse(url)
	if err != nil || u.Opaque != "" || u.Scheme == "" {
		s := userinfoPassword.ReplaceAllString(url, "${1}"+redactedPassword+"@")
		return kvPassword.ReplaceAllString(s, "${1}"+redactedPassword)
	}
	changed := false
	if _, has := u.User.Password(); has {
		u.User = neturl.UserPassword(u.User.Username(), redactedPassword)
		changed = true
	}
	if u.RawQuery != "" {
		q, err := neturl.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = kvPassword.ReplaceAllString(u.RawQuery, "${1}"+redactedPassword)
			changed = true
		} else {
			for _, k := range []string{"password", "sslpassword"} {
				if q.Has(k) {
					q.Set(k, redactedPassword)
					u.RawQuery = q.Encode()
					changed = true
				}
			}
		}
	}
	if !changed {
		// Return the input untouched rather than url.String()'s
		// re-encoding of it.
		return url
	}
	return u.String()
}
