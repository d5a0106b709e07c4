package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Events of actions that write nothing else (a read of one's usage, a
// failed login) are recorded on their own: one INSERT, one commit each,
// on every read of a busy server. Record shares that cost: a caller that
// finds another's INSERT in progress queues its event, and whoever writes
// next writes every queued event in one multi-row INSERT (a group
// commit). Each caller still returns only once its own event is
// committed, so nothing is lost that Add would have kept.

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

	taken bool       // a writer holds it; guarded by recorder.mu
	done  chan error // buffered: the writer never waits on the caller
}

// recorder is an Outbox's queue of events recorded on their own.
type recorder struct {
	mu      sync.Mutex
	queue   []*pendingEvent
	writing chan struct{} // a token: who holds it writes
}

func (r *recorder) take(n int) []*pendingEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	n = min(n, len(r.queue))
	batch := make([]*pendingEvent, n)
	copy(batch, r.queue[:n])
	r.queue = append(r.queue[:0], r.queue[n:]...)
	for _, p := range batch {
		p.taken = true
	}
	return batch
}

func (r *recorder) withdraw(p *pendingEvent) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, x := range r.queue {
		if x == p {
			r.queue = append(r.queue[:i], r.queue[i+1:]...)
			return true
		}
	}
	return false
}

func (r *recorder) isTaken(p *pendingEvent) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return p.taken
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
	p := &pendingEvent{id: e.ID, payload: string(payload), at: e.OccurredAt.UnixMicro(), action: e.Action, done: make(chan error, 1)}
	r := &o.rec
	r.mu.Lock()
	r.queue = append(r.queue, p)
	r.mu.Unlock()
	for {
		if r.isTaken(p) {
			// Written or not, its writer answers within recordTimeout.
			return <-p.done
		}
		select {
		case err := <-p.done:
			return err
		case <-ctx.Done():
			if r.withdraw(p) {
				return fmt.Errorf("outbox: record %s event: %w", e.Action, ctx.Err())
			}
		case r.writing <- struct{}{}:
			if batch := r.take(maxRecordBatch); len(batch) > 0 {
				o.writeBatch(ctx, batch)
			}
			<-r.writing
		}
	}
}

// writeBatch inserts the batch in one statement and answers each event.
func (o *Outbox) writeBatch(ctx context.Context, batch []*pendingEvent) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
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
	_, err := o.db.W.ExecContext(wctx, q.String(), args...)
	for _, p := range batch {
		if err != nil {
			p.done <- fmt.Errorf("outbox: record %s event (with %d others): %w", p.action, len(batch)-1, err)
			continue
		}
		p.done <- nil
	}
	if err == nil {
		o.Notify()
	}
}
