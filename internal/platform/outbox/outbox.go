package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"testing/fstest"
	"time"

	"github.com/reel-video/reel/internal/platform/group"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Outbox is one service's outbox table and the relay that empties it.
type Outbox struct {
	db    *sqldb.DB
	table string

	batch   int
	gather  time.Duration
	poll    time.Duration
	lease   time.Duration
	minWait time.Duration
	maxWait time.Duration
	metrics *Metrics
	log     *slog.Logger

	// wake is signalled (without blocking) when events were added, so an
	// idle relay delivers at once instead of at its next poll.
	wake chan struct{}
	// rec groups the events recorded on their own (Record).
	rec *group.Runner[Event, error]
	// direct is the sink of the relay running in this process (nil while
	// none does), to which recorded events go straight (deliverDirect);
	// directDown stops that from the failure of a direct delivery to the
	// relay's next success.
	direct     atomic.Pointer[directSink]
	directDown atomic.Bool
	// behind holds a token for each event RecordOrLog handed on and that
	// is not committed yet (maxBehind); waiting serializes Wait.
	behind  chan struct{}
	waiting sync.Mutex
}

type directSink struct{ sink Sink }

// Option tunes an Outbox's relay.
type Option func(*Outbox)

// WithBatchSize sets how many events the relay delivers at most per batch
// (default 500).
func WithBatchSize(n int) Option {
	return func(o *Outbox) {
		if n > 0 {
			o.batch = n
		}
	}
}

// WithGather sets how long the relay lets events gather before it
// delivers them, when they trickle in rather than fill a batch (default
// 50 ms; 0 delivers each as soon as it is seen). It is the delay an
// event's delivery may add in exchange for fewer, larger deliveries.
func WithGather(d time.Duration) Option {
	return func(o *Outbox) {
		if d >= 0 {
			o.gather = d
		}
	}
}

// WithPollInterval sets how often an idle relay looks for events written
// by other processes (replicas of the same service), which cannot wake it
// (default 1 s).
func WithPollInterval(d time.Duration) Option {
	return func(o *Outbox) {
		if d > 0 {
			o.poll = d
		}
	}
}

// WithBackoff sets the first and the longest pause between failed
// deliveries (default 200 ms and 30 s).
func WithBackoff(first, longest time.Duration) Option {
	return func(o *Outbox) {
		if first > 0 && longest >= first {
			o.minWait, o.maxWait = first, longest
		}
	}
}

// WithLease sets how long a claimed batch is reserved for the relay that
// claimed it (default 1 min). A relay that dies mid-delivery leaves its
// batch to the others after that time.
func WithLease(d time.Duration) Option {
	return func(o *Outbox) {
		if d > 0 {
			o.lease = d
		}
	}
}

// WithMetrics reports the relay's work to m.
func WithMetrics(m *Metrics) Option { return func(o *Outbox) { o.metrics = m } }

// WithLogger sets the relay's logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *Outbox) {
		if l != nil {
			o.log = l
		}
	}
}

var tableName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// New returns the outbox stored in table (e.g. "users_outbox"), which
// Migrations creates.
func New(db *sqldb.DB, table string, opts ...Option) *Outbox {
	if !tableName.MatchString(table) {
		panic("outbox: bad table name " + table) // a programming error
	}
	o := &Outbox{
		db: db, table: table,
		batch: 500, gather: 50 * time.Millisecond, poll: time.Second, lease: time.Minute,
		minWait: 200 * time.Millisecond, maxWait: 30 * time.Second,
		log:    slog.New(slog.DiscardHandler),
		wake:   make(chan struct{}, 1),
		behind: make(chan struct{}, maxBehind),
	}
	for _, opt := range opts {
		opt(o)
	}
	o.rec = o.newRecorder()
	return o
}

// Table returns the outbox's table name.
func (o *Outbox) Table() string { return o.table }

// Notify wakes the relay. Add already does, but when Add ran inside a
// transaction the relay may look before the commit; calling Notify after
// the commit makes delivery immediate on every engine.
func (o *Outbox) Notify() {
	select {
	case o.wake <- struct{}{}:
	default: // a wake-up is already pending; one is enough
	}
}

// Add records events through q: pass the transaction of the action they
// describe so that both commit or neither does, or the database's writer
// for an action that writes nothing else (such as a failed login).
func (o *Outbox) Add(ctx context.Context, q sqldb.Querier, events ...Event) error {
	for _, e := range events {
		payload, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("outbox: encode event: %w", err)
		}
		_, err = q.ExecContext(ctx, `INSERT INTO `+o.table+` (id, payload, created_at) VALUES ($1, $2, $3)`,
			e.ID, string(payload), e.OccurredAt.UnixMicro())
		if err != nil {
			return fmt.Errorf("outbox: add %s event: %w", e.Action, err)
		}
	}
	// Wake the relay now. Inside a transaction the rows are not visible
	// yet; the relay then checks again a few times shortly after (see Run),
	// and on SQLite its claim simply waits for the single writer to commit.
	if len(events) > 0 {
		o.Notify()
	}
	return nil
}

// Migrations returns the schema of an outbox table for the given dialect,
// to be applied with its own goose version table (VersionTable). The
// sequence column orders delivery; claimed_until lets several relays share
// one outbox on SQLite, where FOR UPDATE SKIP LOCKED does not exist.
func Migrations(table string, d sqldb.Dialect) fs.FS {
	seq := "seq INTEGER PRIMARY KEY AUTOINCREMENT"
	if d == sqldb.Postgres {
		seq = "seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
	}
	up := fmt.Sprintf(`-- +goose Up
CREATE TABLE %[1]s (
    %[2]s,
    id            TEXT NOT NULL UNIQUE,
    payload       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    claimed_until BIGINT NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE %[1]s;
`, table, seq)
	return fstest.MapFS{"00001_outbox.sql": &fstest.MapFile{Data: []byte(up)}}
}

// VersionTable is the goose version table of an outbox table.
func VersionTable(table string) string { return table + "_schema_version" }
