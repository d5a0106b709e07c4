// Package queue runs River (github.com/riverqueue/river) on reel's database
// handles: the SQLite driver on the embedded default, the database/sql
// driver on PostgreSQL. Both drivers take *sql.Tx transactions, so a job is
// inserted in the same transaction as the change that calls for it: a
// rolled-back change leaves no job, a committed one cannot lose it.
//
// The queue is business-agnostic: a service brings its workers and job
// kinds; this package opens the client, migrates River's tables into the
// service's database and logs what River reports.
package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Client is River's client on reel's databases.
type Client = river.Client[*sql.Tx]

// Config says what a process does with the queue.
type Config struct {
	// Workers are the job kinds this process can run. Nil makes an
	// insert-only client (an API replica that enqueues but never works).
	Workers *river.Workers
	// Queues maps queue names to how many jobs of each run at once here.
	// Ignored for an insert-only client.
	Queues map[string]int
	// Periodic jobs are enqueued by the elected leader among the clients.
	Periodic []*river.PeriodicJob
	// PollInterval is how often idle workers look for new jobs: those of
	// other processes, and this one's inserted in a transaction (River
	// wakes its workers at once only after an insert outside one). Zero
	// means one second.
	PollInterval time.Duration
	// RescueAfter is how long a job may run before River takes it for one
	// whose worker died (a killed process) and makes it available again;
	// a kind whose worker sets a longer Timeout waits that long instead
	// (River asks Timeout of the job row each time it looks, so a worker
	// may answer by a heartbeat it keeps in the job). Zero keeps River's
	// default (an hour).
	RescueAfter time.Duration
	// Logger receives River's own log lines (warnings and up).
	Logger *slog.Logger
}

// driver picks River's driver for the engine, on the queue's pool db.Q
// (what River does outside a caller's transaction: fetches, completions,
// cancellations, the leader's maintenance). On PostgreSQL that pool is
// River's own, so its churn cannot take the connections the service's
// writes wait for; on SQLite it is the single writer connection, so
// River's statements queue with reel's own writes instead of meeting
// SQLITE_BUSY.
func driver(db *sqldb.DB) (riverdriver.Driver[*sql.Tx], error) {
	switch db.Dialect {
	case sqldb.SQLite:
		return riversqlite.New(db.Q), nil
	case sqldb.Postgres:
		return riverdatabasesql.New(db.Q), nil
	default:
		return nil, fmt.Errorf("queue: unknown dialect %q", db.Dialect)
	}
}

// Migrate creates or updates River's tables in db. On PostgreSQL concurrent
// callers (replicas starting at once) are serialised by an advisory lock;
// on SQLite the single writer serialises them.
func Migrate(ctx context.Context, db *sqldb.DB) error {
	drv, err := driver(db)
	if err != nil {
		return err
	}
	m, err := rivermigrate.New(drv, &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("queue: migrator: %w", err)
	}
	if db.Dialect == sqldb.Postgres {
		// River's migrations must not share one transaction (a migration
		// adds an enum value that the next one uses), so the lock is a
		// session lock on a connection of its own, held while they run.
		conn, err := db.Q.Conn(ctx)
		if err != nil {
			return fmt.Errorf("queue: migrate: %w", err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
			return fmt.Errorf("queue: migrate: lock: %w", err)
		}
		defer func() {
			// A fresh context: the lock must go even when ctx is done.
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_, _ = conn.ExecContext(uctx, "SELECT pg_advisory_unlock($1)", migrationLock)
		}()
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("queue: migrate: %w", err)
	}
	return nil
}

var migrationLock = int64(crc32.ChecksumIEEE([]byte("reel/queue/migrate")))

// New returns a River client on db. Start it to work jobs; an insert-only
// client (no Workers) needs no start.
func New(db *sqldb.DB, cfg Config) (*Client, error) {
	drv, err := driver(db)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	rc := &river.Config{
		Logger: slog.New(levelAtLeast{logger.Handler(), slog.LevelWarn}),
		// River's own poll-only mode: reel's database/sql drivers have no
		// LISTEN/NOTIFY, and one query a second per idle process is cheap.
		PollOnly:             true,
		FetchPollInterval:    cfg.PollInterval,
		ErrorHandler:         errorLogger{logger},
		PeriodicJobs:         cfg.Periodic,
		RescueStuckJobsAfter: cfg.RescueAfter,
	}
	// River wants the rescue to wait at least its default job timeout,
	// which bounds only kinds whose worker sets none; with a short rescue
	// (a heartbeat decides, see RescueAfter) that default shrinks to it.
	if cfg.RescueAfter > 0 && cfg.RescueAfter < river.JobTimeoutDefault {
		rc.JobTimeout = cfg.RescueAfter
	}
	if rc.FetchPollInterval == 0 {
		rc.FetchPollInterval = time.Second
	}
	rc.FetchCooldown = min(river.FetchCooldownDefault, rc.FetchPollInterval)
	if cfg.Workers != nil {
		rc.Workers = cfg.Workers
		// A kind this process has no worker for (one a newer release
		// added, during a rolling upgrade) stays available for a process
		// that has, rather than failing an attempt here.
		rc.FetchOnlyKnownKinds = true
		rc.Queues = make(map[string]river.QueueConfig, len(cfg.Queues))
		for name, n := range cfg.Queues {
			rc.Queues[name] = river.QueueConfig{MaxWorkers: max(n, 1)}
		}
	}
	c, err := river.NewClient(drv, rc)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	return c, nil
}

// Count is how many jobs of a kind are in a state.
type Count struct {
	Kind  string
	State rivertype.JobState
	N     int64
}

// Counts counts the jobs in db by kind and state, in one query, for
// metrics. Finished jobs count until River's cleaner deletes them (a day
// after they finished, by default).
func Counts(ctx context.Context, db *sqldb.DB) ([]Count, error) {
	rows, err := db.R.QueryContext(ctx, `SELECT kind, state, COUNT(*) FROM river_job GROUP BY kind, state ORDER BY kind, state`)
	if err != nil {
		return nil, fmt.Errorf("queue: count jobs: %w", err)
	}
	defer rows.Close()
	var out []Count
	for rows.Next() {
		var c Count
		if err := rows.Scan(&c.Kind, &c.State, &c.N); err != nil {
			return nil, fmt.Errorf("queue: count jobs: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queue: count jobs: %w", err)
	}
	return out, nil
}

// errorLogger logs a failed or panicking job; River retries it by its
// policy.
type errorLogger struct{ log *slog.Logger }

func (e errorLogger) HandleError(ctx context.Context, job *rivertype.JobRow, err error) *river.ErrorHandlerResult {
	level := slog.LevelWarn
	var cancel *river.JobCancelError
	if errors.As(err, &cancel) || errors.Is(err, context.Canceled) {
		level = slog.LevelInfo
	}
	e.log.Log(ctx, level, "job failed", "job_id", job.ID, "kind", job.Kind, "attempt", job.Attempt,
		"max_attempts", job.MaxAttempts, "err", err)
	return nil
}

func (e errorLogger) HandlePanic(ctx context.Context, job *rivertype.JobRow, v any, trace string) *river.ErrorHandlerResult {
	e.log.Error("job panicked", "job_id", job.ID, "kind", job.Kind, "attempt", job.Attempt,
		"panic", fmt.Sprint(v), "trace", trace)
	return nil
}

// levelAtLeast drops records below a level: River logs every job's start
// and end at info, which would drown the service's own lines.
type levelAtLeast struct {
	slog.Handler
	min slog.Level
}

func (h levelAtLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

// remoteCancel ends River's warning about a running job cancelled from
// elsewhere (its executor's, as of v0.51).
const remoteCancel = "job cancelled remotely"

// Handle passes River's records on, but for a remote cancel: reel cancels
// the jobs of every video that goes to the trash, an expected end that
// errorLogger records at info, not a warning for an operator.
func (h levelAtLeast) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn && strings.HasSuffix(r.Message, remoteCancel) {
		r.Level = slog.LevelInfo
		if !h.Enabled(ctx, r.Level) {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h levelAtLeast) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelAtLeast{h.Handler.WithAttrs(attrs), h.min}
}

func (h levelAtLeast) WithGroup(name string) slog.Handler {
	return levelAtLeast{h.Handler.WithGroup(name), h.min}
}
