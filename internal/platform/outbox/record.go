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
// While the relay runs in this process, a recorded batch skips the outbox
// table: it goes straight to the relay's sink (deliverDirect), which saves
// the table's insert, claim and delete, a third of the statements an
// event cost. The outbox is still where such an event waits when the
// activity log cannot take it.
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

// directTimeout bounds a direct delivery, after which the batch goes into
// the outbox instead.
const directTimeout = 5 * time.Second

func (o *Outbox) newRecorder() *group.Runner[Event, error] {
	// One write at a time: the next one takes whatever queued meanwhile,
	// after letting events gather as the relay does (WithGather): the
	// callers that wait for it are background ones (RecordOrLog), and a
	// write into the activity log costs most per statement, not per row.
	return group.New(make(chan struct{}, 1), maxRecordBatch, o.writeBatch).WithLinger(o.gather)
}

// Record stores one event on its own, through the database's writer, for
// an action that writes nothing else (use Add inside the transaction of
// an action that does). It returns once the event is committed, to the
// outbox or, while the relay runs here, to the activity log; events
// recorded at the same moment share one INSERT.
func (o *Outbox) Record(ctx context.Context, e Event) error {
	werr, err := o.rec.Do(ctx, e)
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

// writeBatch delivers the batch directly, or else inserts it in one
// statement, and answers each event.
func (o *Outbox) writeBatch(ctx context.Context, batch []Event) []error {
	errs := make([]error, len(batch))
	if o.deliverDirect(ctx, batch) {
		return errs
	}
	ctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	var q strings.Builder
	q.WriteString(`INSERT INTO ` + o.table + ` (id, payload, created_at) VALUES `)
	args := make([]any, 0, 3*len(batch))
	for i, e := range batch {
		payload, err := json.Marshal(e)
		if err != nil { // a bug of its caller's: the others are still written
			errs[i] = fmt.Errorf("outbox: encode %s event: %w", e.Action, err)
			continue
		}
		if len(args) > 0 {
			q.WriteString(", ")
		}
		if o.db.Dialect == sqldb.SQLite {
			// Plain ?: SQLite finds $N names by a linear search, which
			// makes binding a long statement quadratic.
			q.WriteString("(?, ?, ?)")
		} else {
			n := len(args)
			q.WriteString("($" + strconv.Itoa(n+1) + ", $" + strconv.Itoa(n+2) + ", $" + strconv.Itoa(n+3) + ")")
		}
		args = append(args, e.ID, string(payload), e.OccurredAt.UnixMicro())
	}
	if len(args) == 0 {
		return errs
	}
	if _, err := o.db.W.ExecContext(ctx, q.String(), args...); err != nil {
		for i, e := range batch {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("outbox: record %s event (with %d others): %w", e.Action, len(batch)-1, err)
			}
		}
		return errs
	}
	o.Notify()
	return errs
}

// deliverDirect hands a recorded batch straight to the sink of the relay
// running in this process, and reports whether the sink took it. It does
// not try while the last direct delivery's failure stands, which the
// relay's next successful delivery ends: an activity log that is down
// costs one timeout, then its events wait in the outbox as the relay's do.
func (o *Outbox) deliverDirect(ctx context.Context, batch []Event) bool {
	d := o.direct.Load()
	if d == nil || o.directDown.Load() {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, directTimeout)
	defer cancel()
	if err := d.sink.Ingest(ctx, batch); err != nil {
		// A refused batch says nothing of the log's health: the relay
		// finds and parks the bad event, the others go on directly.
		if !rejected(err) {
			o.directDown.Store(true)
		}
		o.log.Warn("direct delivery to the activity log failed; the events go through the outbox", "table", o.table, "events", len(batch), "err", err)
		return false
	}
	if o.metrics != nil {
		o.metrics.direct.WithLabelValues(o.table).Add(float64(len(batch)))
	}
	return true
}
