package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/reel-video/reel/internal/platform/group"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Events of actions that write nothing else (a read of one's usage, a
// failed login) are recorded on their own: one INSERT, one commit each,
// on every read of a busy server. Record shares that cost: a caller that
// finds another's INSERT in progress queues its event, and whoever writes
// next writes every queued event in one multi-row INSERT (a group commit,
// group.Runner). Each caller of Record returns only once its own event is
// committed.
//
// RecordOrLog, for events whose loss must not fail their action, does not
// wait for the commit: it hands the event to a goroutine that records it
// and answers at once, so that a read does not queue behind uploads for
// SQLite's one writer (decision 0005). The event is committed a few
// milliseconds later unless the process dies first; Wait, which the relay
// calls as it stops, waits for the events still on their way.

// maxBehind bounds the events RecordOrLog has handed on and that are not
// yet committed, a goroutine each. Past it, callers wait for their own
// events, which slows them to the pace the database keeps rather than
// piling up goroutines. It is far above what the 1000-user load test keeps
// on their way.
const maxBehind = 1024

// maxRecordBatch bounds one INSERT: three parameters per event stay far
// under SQLite's and PostgreSQL's limits.
const maxRecordBatch = 200

// recordTimeout bounds one group INSERT, which is not tied to any one
// caller's context: the others still want their events written.
const recordTimeout = 30 * time.Second

type pendingEvent struct {
	id, payload string
	at          int64
	action      string
}

func (o *Outbox) newRecorder() *group.Runner[pendingEvent, error] {
	// One INSERT at a time: the next one takes whatever queued meanwhile.
	return group.New(make(chan struct{}, 1), maxRecordBatch, o.writeBatch)
}

// Record stores one event on its own, through the database's writer, for
// an action that writes nothing else (use Add inside the transaction of
// an action that does). It returns once the event is committed; events
// recorded at the same moment share one INSERT.
func (o *Outbox) Record(ctx context.Context, e Event) error {
	payload, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("outbox: encode event: %w", err)
	}
	werr, err := o.rec.Do(ctx, pendingEvent{id: e.ID, payload: string(payload), at: e.OccurredAt.UnixMicro(), action: e.Action})
	if err != nil {
		return fmt.Errorf("outbox: record %s event: %w", e.Action, err)
	}
	return werr
}

// RecordOrLog is Record for an event whose loss must not fail the action
// it describes (a read, a refusal already answered): it returns at once,
// and the event is committed in the background (see above); a failure is
// logged with the outbox's logger and the request's id.
func (o *Outbox) RecordOrLog(ctx context.Context, e Event) {
	select {
	case o.behind <- struct{}{}:
	default:
		o.recordOrLog(ctx, e) // maxBehind on their way: wait for this one
		return
	}
	// The request's values (its id, for the log) without its end: the
	// request is answered before the event is written.
	ctx = context.WithoutCancel(ctx)
	go func() {
		defer func() { <-o.behind }()
		o.recordOrLog(ctx, e)
	}()
}

func (o *Outbox) recordOrLog(ctx context.Context, e Event) {
	if err := o.Record(ctx, e); err != nil {
		obs.Logger(ctx, o.log).Error("record activity event", "table", o.table, "action", e.Action, "err", err)
	}
}

// Wait returns once every event RecordOrLog handed on has been committed,
// or has failed and been logged (each INSERT is bounded by recordTimeout).
// Call it before closing the database. It takes every token of behind,
// which only the events on their way hold; meanwhile RecordOrLog finds
// none free and records in its caller, so nothing slips past.
func (o *Outbox) Wait() {
	o.waiting.Lock() // two Waits each holding some tokens would block for ever
	defer o.waiting.Unlock()
	for range cap(o.behind) {
		o.behind <- struct{}{}
	}
	for range cap(o.behind) {
		<-o.behind
	}
}

// writeBatch inserts the batch in one statement and answers each event.
func (o *Outbox) writeBatch(ctx context.Context, batch []pendingEvent) []error {
	ctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	var q strings.Builder
	q.WriteString(`INSERT INTO ` + o.table + ` (id, payload, created_at) VALUES `)
	args := make([]any, 0, 3*len(batch))
	for i, p := range batch {
		if i > 0 {
			q.WriteString(", ")
		}
		if o.db.Dialect == sqldb.SQLite {
			// Plain ?: SQLite finds $N names by a linear search, which
			// makes binding a long statement quadratic.
			q.WriteString("(?, ?, ?)")
		} else {
			n := 3 * i
			q.WriteString("($" + strconv.Itoa(n+1) + ", $" + strconv.Itoa(n+2) + ", $" + strconv.Itoa(n+3) + ")")
		}
		args = append(args, p.id, p.payload, p.at)
	}
	_, err := o.db.W.ExecContext(ctx, q.String(), args...)
	errs := make([]error, len(batch))
	for i, p := range batch {
		if err != nil {
			errs[i] = fmt.Errorf("outbox: record %s event (with %d others): %w", p.action, len(batch)-1, err)
		}
	}
	if err == nil {
		o.Notify()
	}
	return errs
}
