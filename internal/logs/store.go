package logs

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Store is the logs service's SQL.
type Store struct {
	db *sqldb.DB
}

// NewStore returns the store over db.
func NewStore(db *sqldb.DB) *Store { return &Store{db: db} }

const eventCols = `id, occurred_at, user_id, action, service, outcome, description, target_id, request_id, ip, user_agent, metadata`

// insertChunk is how many rows one SQLite INSERT carries: multi-row inserts
// cut the per-statement cost, and 13 columns x 250 rows stays far below
// SQLite's parameter limit (32766).
const insertChunk = 250

// insert stores rows at once (one statement on PostgreSQL, one
// transaction on SQLite), skipping ids already stored, and returns how
// many were new.
func (s *Store) insert(ctx context.Context, rows []eventRow, now int64) (int64, error) {
	if s.db.Dialect == sqldb.Postgres {
		// One statement with one array per column: a single round trip
		// (no transaction around it) and a statement that parses the same
		// whatever the batch size. Rows go in id order, so two batches
		// sharing events (a relay's redelivery) wait for each other rather
		// than deadlock, which only Tx would have retried.
		slices.SortFunc(rows, func(a, b eventRow) int { return strings.Compare(a.ID, b.ID) })
		return exec(ctx, s.db.W, pgInsert, pgArrays(rows, now)...)
	}
	var added int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		added = 0
		for start := 0; start < len(rows); start += insertChunk {
			chunk := rows[start:min(len(rows), start+insertChunk)]
			q, args := insertStatement(chunk, now)
			n, err := exec(ctx, tx, q, args...)
			if err != nil {
				return err
			}
			added += n
		}
		return nil
	})
	return added, err
}

func exec(ctx context.Context, q sqldb.Querier, stmt string, args ...any) (int64, error) {
	res, err := q.ExecContext(ctx, stmt, args...)
	if err != nil {
		return 0, fmt.Errorf("insert events: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("insert events: %w", err)
	}
	return n, nil
}

// pgInsert inserts a batch given as column arrays. Idempotency: an event
// already stored is skipped, not an error.
const pgInsert = `INSERT INTO log_events (` + eventCols + `, ingested_at)
SELECT u.*, $13::bigint FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[]) AS u
ON CONFLICT (id) DO NOTHING`

func pgArrays(rows []eventRow, now int64) []any {
	n := len(rows)
	var (
		ids, actions, services, outcomes, descs = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		reqs, ips, agents, metas                = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		users, targets                          = make([]*string, n), make([]*string, n)
		times                                   = make([]int64, n)
	)
	for i, r := range rows {
		ids[i], times[i], users[i], actions[i], services[i], outcomes[i] = r.ID, r.OccurredAt.UnixMicro(), r.UserID, r.Action, r.Service, r.Outcome
		descs[i], targets[i], reqs[i], ips[i], agents[i], metas[i] = r.Description, r.TargetID, r.RequestID, r.IP, r.UserAgent, r.metadata
	}
	return []any{ids, times, users, actions, services, outcomes, descs, targets, reqs, ips, agents, metas, now}
}

// insertStatement builds one multi-row INSERT for SQLite, where a statement
// costs no round trip but still a parse and a plan each.
//
// The placeholders are plain "?": SQLite treats "$N" as a named parameter
// and resolves each name by a linear search, which makes binding thousands
// of them quadratic. OR IGNORE rather than ON CONFLICT (id) DO NOTHING:
// both skip an event already stored, but only OR IGNORE tells SQLite that
// the statement can never abort halfway, which spares it a statement
// journal in a temporary file (docs/benchmarks.md, "Activity log ingest").
func insertStatement(rows []eventRow, now int64) (string, []any) {
	const cols = 13
	var b strings.Builder
	b.Grow(64 + len(rows)*cols*6)
	b.WriteString(`INSERT OR IGNORE INTO log_events (` + eventCols + `, ingested_at) VALUES `)
	args := make([]any, 0, len(rows)*cols)
	for i, r := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := 1; c <= cols; c++ {
			if c > 1 {
				b.WriteByte(',')
			}
			b.WriteByte('?')
		}
		b.WriteByte(')')
		args = append(args, r.ID, r.OccurredAt.UnixMicro(), nullable(r.UserID), r.Action, r.Service, r.Outcome,
			r.Description, nullable(r.TargetID), r.RequestID, r.IP, r.UserAgent, r.metadata, now)
	}
	return b.String(), args
}

func nullable(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// where renders f (and the keyset position after, unless zero) as a WHERE
// clause with $n placeholders.
func where(f Filter, after page.Cursor) (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, arg any) {
		args = append(args, arg)
		conds = append(conds, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.UserID != "" {
		add(`user_id = ?`, f.UserID)
	}
	if f.Action != "" {
		add(`action = ?`, f.Action)
	}
	if f.Service != "" {
		add(`service = ?`, f.Service)
	}
	if f.Outcome != "" {
		add(`outcome = ?`, f.Outcome)
		if f.Outcome != outbox.Success {
			// The predicate of log_events_unsuccessful, verbatim.
			conds = append(conds, `outcome <> 'success'`)
		}
	}
	if !f.Since.IsZero() {
		add(`occurred_at >= ?`, f.Since.UnixMicro())
	}
	if !f.Until.IsZero() {
		add(`occurred_at < ?`, f.Until.UnixMicro())
	}
	if f.Q != "" {
		// LOWER on both sides: SQLite's LIKE ignores ASCII case and
		// PostgreSQL's does not; this makes them agree.
		add(`LOWER(description) LIKE ? ESCAPE '\'`, sqldb.Contains(strings.ToLower(f.Q)))
	}
	if !after.Zero() {
		args = append(args, after.T, after.ID)
		n := len(args)
		conds = append(conds, fmt.Sprintf(`(occurred_at, id) < ($%d, $%d)`, n-1, n))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// search returns up to limit events matching f after the cursor, newest
// first.
func (s *Store) search(ctx context.Context, f Filter, after page.Cursor, limit int) ([]outbox.Event, error) {
	q, args := searchQuery(f, after, limit)
	rows, err := s.db.R.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("select events: %w", err)
	}
	defer rows.Close()
	out := make([]outbox.Event, 0, min(limit, 128))
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select events: %w", err)
	}
	return out, nil
}

func searchQuery(f Filter, after page.Cursor, limit int) (string, []any) {
	w, args := where(f, after)
	return `SELECT ` + eventCols + ` FROM log_events` + w + ` ORDER BY occurred_at DESC, id DESC LIMIT ` + strconv.Itoa(limit), args
}

// scan streams every event matching f to each, newest first.
func (s *Store) scan(ctx context.Context, f Filter, each func(outbox.Event) error) error {
	w, args := where(f, page.Cursor{})
	rows, err := s.db.R.QueryContext(ctx, `SELECT `+eventCols+` FROM log_events`+w+` ORDER BY occurred_at DESC, id DESC`, args...)
	if err != nil {
		return fmt.Errorf("select events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return err
		}
		if err := each(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("select events: %w", err)
	}
	return nil
}

func scanEvent(rows *sql.Rows) (outbox.Event, error) {
	var (
		e            outbox.Event
		at           int64
		user, target sql.NullString
		meta         string
	)
	if err := rows.Scan(&e.ID, &at, &user, &e.Action, &e.Service, &e.Outcome, &e.Description, &target,
		&e.RequestID, &e.IP, &e.UserAgent, &meta); err != nil {
		return e, fmt.Errorf("scan event: %w", err)
	}
	e.OccurredAt = time.UnixMicro(at).UTC()
	if user.Valid {
		e.UserID = &user.String
	}
	if target.Valid {
		e.TargetID = &target.String
	}
	if err := json.Unmarshal([]byte(meta), &e.Metadata); err != nil || e.Metadata == nil {
		// Ingest only stores objects; never fail a whole listing over one.
		e.Metadata = map[string]any{}
	}
	return e, nil
}

// purge deletes up to limit events older than before.
func (s *Store) purge(ctx context.Context, before int64, limit int) (int64, error) {
	res, err := s.db.W.ExecContext(ctx, `DELETE FROM log_events WHERE id IN (
    SELECT id FROM log_events WHERE occurred_at < $1 ORDER BY occurred_at LIMIT `+strconv.Itoa(limit)+`)`, before)
	if err != nil {
		return 0, fmt.Errorf("delete events: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete events: %w", err)
	}
	return n, nil
}
