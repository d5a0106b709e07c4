package outbox

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reel-video/reel/internal/platform/backoff"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Sink receives delivered events: the logs service in-process, or its HTTP
// client in split mode. Ingest must be idempotent by event id, because a
// relay that crashes between the sink's acknowledgement and the delete
// delivers the batch again.
type Sink interface {
	Ingest(ctx context.Context, events []Event) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, events []Event) error

// Ingest implements Sink.
func (f SinkFunc) Ingest(ctx context.Context, events []Event) error { return f(ctx, events) }

// ErrRejected marks a sink's refusal of a batch as permanent (the events
// are invalid, or the batch too large): sending it again unchanged cannot
// succeed. The relay then splits the batch to find the offending event and
// parks it, so one bad event cannot hold up the rest.
var ErrRejected = errors.New("outbox: the sink rejected the events")

// rejected reports whether err is a permanent refusal: ErrRejected, or a
// classified error for bad input from an in-process sink.
func rejected(err error) bool {
	if errors.Is(err, ErrRejected) {
		return true
	}
	if _, ok := errs.As(err); !ok {
		return false
	}
	switch errs.KindOf(err) {
	case errs.Invalid, errs.Validation, errs.TooLarge:
		return true
	}
	return false
}

// parkedUntil is the claimed_until of a parked row: claimed for ever, so no
// relay picks it up again, yet still counted as pending so that the lag
// metric shows an operator that something needs attention.
const parkedUntil = math.MaxInt64

// cleanupTimeout bounds the release or delete that follows a delivery
// attempt; it runs even when Run's context has just been cancelled, so that
// a finished batch is not delivered again after a restart.
const cleanupTimeout = 10 * time.Second

// statsEvery is how often the relay refreshes the size and lag gauges (a
// COUNT over the outbox): at most once a second, however busy it is.
const statsEvery = time.Second

// Run relays events to sink until ctx is cancelled, then returns nil after
// finishing or giving up the batch in flight (undelivered rows stay for the
// next run). Events go out in batches in outbox order and are deleted only
// once the sink acknowledged them. While the sink fails, Run retries with
// capped exponential backoff and jitter; it never drops an event.
//
// Events that trickle in are gathered for a moment (WithGather, 50 ms)
// before they go out: a delivery costs a claim, an insert into the
// activity log and a delete whatever its size, and under load events
// arrive every few milliseconds. A full batch is followed by the next at
// once.
//
// Several relays (replicas of a service) may run on one outbox: each claims
// its batch first (claimed_until, set in a write transaction; on PostgreSQL
// with FOR UPDATE SKIP LOCKED so that claims do not queue behind each
// other), so no two deliver the same event, short of a lease expiring
// mid-delivery, which the sink's idempotency absorbs.
//
// While Run runs, events recorded on their own go to sink directly
// (record.go). Before it returns, it stops that and waits for the events
// RecordOrLog still has on their way (Wait).
func (o *Outbox) Run(ctx context.Context, sink Sink) error {
	// Last, so that the database may close once Run has returned.
	defer o.Wait()
	o.direct.Store(&directSink{sink})
	defer o.direct.Store(nil)
	limit := o.batch // shrinks while isolating a rejected event
	failures := 0
	eager := 0 // quick re-checks left after a wake-up that found nothing
	var lastStats time.Time
	for {
		n, err := o.deliver(ctx, sink, limit)
		if ctx.Err() != nil {
			return nil
		}
		if now := time.Now(); now.Sub(lastStats) >= statsEvery {
			o.observe(ctx)
			lastStats = now
		}

		var wait time.Duration
		switch {
		case err == nil && n > 0:
			// After a full batch more are waiting; after a partial one
			// the outbox is drained, and what arrives next gathers first.
			failures, eager = 0, 0
			drained := n < limit
			limit = min(o.batch, limit*2)
			if drained && backoff.Sleep(ctx, o.gather) != nil {
				return nil
			}
			continue
		case err == nil:
			failures = 0
			if eager > 0 {
				// Woken by Add inside a transaction that had not committed
				// yet: look again shortly rather than after a whole poll.
				wait = 20 * time.Millisecond << (4 - eager)
				eager--
			} else {
				wait = o.poll
			}
		case errors.Is(err, errSplit):
			limit = max(1, n/2) // n is the size of the rejected batch
			continue
		default:
			failures++
			wait = o.retryWait(failures)
			if o.metrics != nil {
				o.metrics.failed.WithLabelValues(o.table).Inc()
			}
			o.log.Warn("outbox delivery failed; will retry", "table", o.table, "attempt", failures, "retry_in", wait.Round(time.Millisecond), "err", err)
		}

		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-o.wakeIf(failures == 0):
			timer.Stop()
			eager = 4
			if backoff.Sleep(ctx, o.gather) != nil {
				return nil
			}
		case <-timer.C:
		}
	}
}

// wakeIf returns the wake-up channel, or nil (blocks for ever in a select)
// while backing off: new events must not cut a backoff short.
func (o *Outbox) wakeIf(ok bool) <-chan struct{} {
	if ok {
		return o.wake
	}
	return nil
}

// retryWait is the pause after the n-th failure in a row: exponential from
// minWait, capped at maxWait, with "equal jitter" (half fixed, half random)
// so that replicas that failed together do not retry in lockstep.
func (o *Outbox) retryWait(n int) time.Duration {
	d := o.maxWait
	if n < 32 {
		if x := o.minWait << (n - 1); x > 0 && x < o.maxWait {
			d = x
		}
	}
	half := d / 2
	return half + rand.N(half+1)
}

// errSplit tells Run that the sink rejected a batch of several events, so
// the next batches must be smaller until the bad event is alone.
var errSplit = errors.New("outbox: batch rejected, splitting it")

// row is a claimed outbox row.
type row struct {
	seq     int64
	payload string
}

// deliver claims up to limit events, hands them to sink and deletes them.
// It returns how many were delivered (or parked); with errSplit, how many
// the rejected batch held.
func (o *Outbox) deliver(ctx context.Context, sink Sink, limit int) (int, error) {
	lease := time.Now().Add(o.lease).UnixMicro()
	rows, err := o.claim(ctx, limit, lease)
	if err != nil {
		return 0, err
	}
	if len(rows) == 0 {
		return 0, nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()

	events := make([]Event, 0, len(rows))
	seqs := make([]int64, 0, len(rows))
	for _, r := range rows {
		var e Event
		if err := json.Unmarshal([]byte(r.payload), &e); err != nil {
			// Only a hand-edited row can get here; keep it for a human.
			o.park(cctx, r.seq, "", err)
			continue
		}
		events = append(events, e)
		seqs = append(seqs, r.seq)
	}
	if len(events) == 0 {
		return len(rows), nil
	}

	if err := sink.Ingest(ctx, events); err != nil {
		if rejected(err) && len(events) == 1 {
			o.park(cctx, seqs[0], events[0].ID, err)
			return len(rows), nil
		}
		if rerr := o.release(cctx, seqs, lease); rerr != nil {
			// The lease runs out on its own; just say why the rows wait.
			o.log.Warn("outbox release failed; rows wait for their lease to expire", "table", o.table, "err", rerr)
		}
		if rejected(err) {
			return len(events), fmt.Errorf("%w: %w", errSplit, err)
		}
		return 0, fmt.Errorf("outbox %s: deliver %d events: %w", o.table, len(events), err)
	}
	o.directDown.Store(false) // the sink is back
	if err := o.remove(cctx, seqs); err != nil {
		// Delivered but still here: redelivered after the lease, which the
		// sink's idempotency absorbs.
		return 0, err
	}
	if o.metrics != nil {
		o.metrics.delivered.WithLabelValues(o.table).Add(float64(len(events)))
	}
	return len(rows), nil
}

// claim reserves up to limit unclaimed rows, oldest first, until lease.
func (o *Outbox) claim(ctx context.Context, limit int, lease int64) ([]row, error) {
	var q string
	if o.db.Dialect == sqldb.Postgres {
		// SKIP LOCKED lets concurrent claims take disjoint rows without
		// waiting; MATERIALIZED makes sure the locking subquery runs once.
		q = `WITH c AS MATERIALIZED (
    SELECT seq FROM ` + o.table + ` WHERE claimed_until < $2 ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED
)
UPDATE ` + o.table + ` AS t SET claimed_until = $1, attempts = t.attempts + 1
FROM c WHERE t.seq = c.seq
RETURNING t.seq, t.payload`
	} else {
		// SQLite runs one writer at a time (the single writer connection
		// in this process, the file lock across processes), so the
		// select-and-mark below is atomic.
		q = `UPDATE ` + o.table + ` SET claimed_until = $1, attempts = attempts + 1
WHERE seq IN (SELECT seq FROM ` + o.table + ` WHERE claimed_until < $2 ORDER BY seq LIMIT $3)
RETURNING seq, payload`
	}
	now := time.Now().UnixMicro()
	var out []row
	err := o.db.Tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		rs, err := tx.QueryContext(ctx, q, lease, now, limit)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var r row
			if err := rs.Scan(&r.seq, &r.payload); err != nil {
				return err
			}
			out = append(out, r)
		}
		return rs.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("outbox %s: claim: %w", o.table, err)
	}
	// RETURNING has no defined order.
	slices.SortFunc(out, func(a, b row) int { return cmp.Compare(a.seq, b.seq) })
	return out, nil
}

// inList renders seqs as a literal list: they are integers we read from the
// database, and one statement per batch beats hundreds of placeholders.
func inList(seqs []int64) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, s := range seqs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(s, 10))
	}
	b.WriteByte(')')
	return b.String()
}

// remove deletes delivered rows.
func (o *Outbox) remove(ctx context.Context, seqs []int64) error {
	if _, err := o.db.W.ExecContext(ctx, `DELETE FROM `+o.table+` WHERE seq IN `+inList(seqs)); err != nil {
		return fmt.Errorf("outbox %s: delete delivered events: %w", o.table, err)
	}
	return nil
}

// release gives claimed rows back after a failed delivery, unless another
// relay has claimed them since (their lease differs).
func (o *Outbox) release(ctx context.Context, seqs []int64, lease int64) error {
	_, err := o.db.W.ExecContext(ctx, `UPDATE `+o.table+` SET claimed_until = 0 WHERE claimed_until = $1 AND seq IN `+inList(seqs), lease)
	if err != nil {
		return fmt.Errorf("outbox %s: release claim: %w", o.table, err)
	}
	return nil
}

// park sets aside a row the sink refuses for good. It stays in the table
// (nothing is dropped) and keeps the lag metric growing until an operator
// deals with it.
func (o *Outbox) park(ctx context.Context, seq int64, id string, cause error) {
	o.log.Error("outbox event rejected by the activity log; parked in the outbox", "table", o.table, "seq", seq, "event_id", id, "err", cause)
	if o.metrics != nil {
		o.metrics.parked.WithLabelValues(o.table).Inc()
	}
	if _, err := o.db.W.ExecContext(ctx, `UPDATE `+o.table+` SET claimed_until = $1 WHERE seq = $2`, int64(parkedUntil), seq); err != nil {
		o.log.Error("outbox park failed; the event will be retried after its lease", "table", o.table, "seq", seq, "err", err)
	}
}

// observe refreshes the size and lag gauges.
func (o *Outbox) observe(ctx context.Context) {
	if o.metrics == nil {
		return
	}
	st, err := o.Stats(ctx)
	if err != nil {
		if ctx.Err() == nil {
			o.log.Warn("outbox stats failed", "table", o.table, "err", err)
		}
		return
	}
	o.metrics.pending.WithLabelValues(o.table).Set(float64(st.Pending))
	o.metrics.lag.WithLabelValues(o.table).Set(st.Lag.Seconds())
}

// Stats describe an outbox's backlog.
type Stats struct {
	// Pending counts the events not yet delivered (parked ones included).
	Pending int64
	// Lag is the age of the oldest pending event, 0 when there is none.
	Lag time.Duration
}

// Stats returns the outbox's current backlog.
func (o *Outbox) Stats(ctx context.Context) (Stats, error) {
	var n, oldest int64
	err := o.db.R.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MIN(created_at), 0) FROM `+o.table).Scan(&n, &oldest)
	if err != nil {
		return Stats{}, fmt.Errorf("outbox %s: stats: %w", o.table, err)
	}
	st := Stats{Pending: n}
	if n > 0 {
		st.Lag = max(0, time.Since(time.UnixMicro(oldest)))
	}
	return st, nil
}
