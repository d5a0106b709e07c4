package usage

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/backoff"
	"github.com/reel-video/reel/internal/platform/errs"
)

// EgressSink is what an EgressMeter reports to: the usage Service in
// process, or its Client.
type EgressSink interface {
	AddEgress(ctx context.Context, batchID string, bytes map[string]int64) error
	Allowance(ctx context.Context, userID string) (int64, error)
}

// MeterConfig tunes an EgressMeter. The zero value is a good default.
type MeterConfig struct {
	// FlushEvery is how often counts are sent (default 1 s).
	FlushEvery time.Duration
	// CacheFor is how long an allowance read from the sink is reused
	// (default 1 s). Bytes added meanwhile are subtracted from it, so a
	// longer cache costs accuracy only across other replicas' viewers.
	CacheFor time.Duration
	// Log receives flush failures (default: discard).
	Log *slog.Logger
	// Now is the clock (default time.Now), for tests.
	Now func() time.Time
}

// EgressMeter counts bytes delivered to viewers on the streaming side. Add
// is cheap enough to call for every write to a client: it aggregates in
// memory, sharded to keep concurrent writers apart, and Run sends the
// totals to the usage service about every second as one batch, and once
// more when it stops, so that nothing counted is lost on a clean shutdown.
//
// A batch that fails to send is kept, with its id, and sent again as it
// is; new counts wait for the next batch. The id makes the retry safe
// when the first attempt did land but its answer was lost.
type EgressMeter struct {
	sink     EgressSink
	every    time.Duration
	cacheFor time.Duration
	log      *slog.Logger
	now      func() time.Time
	seed     maphash.Seed
	shards   [meterShards]meterShard

	// flushMu makes flushes take turns; batch is only touched under it.
	flushMu sync.Mutex
	batch   *egressBatch
}

const meterShards = 32

// allowanceTimeout bounds one read of an allowance from the sink.
const allowanceTimeout = 5 * time.Second

type meterShard struct {
	mu sync.Mutex
	// pending are counts not yet in a batch; inflight are this shard's
	// part of the batch being sent (and resent until it lands).
	pending, inflight map[string]int64
	cache             map[string]*allowanceEntry
}

type egressBatch struct {
	id     string
	counts map[string]int64
}

// allowanceEntry is a cached allowance. spent counts bytes not in the
// sink's figure: unflushed when it was read, and added since.
type allowanceEntry struct {
	base  int64
	spent int64
	at    time.Time
	day   string
	// loading is non-nil while the allowance is being read; waiters block
	// on it instead of all asking the sink at once.
	loading chan struct{}
	err     error
}

// NewEgressMeter returns a meter reporting to sink. Start it with Run.
func NewEgressMeter(sink EgressSink, cfg MeterConfig) *EgressMeter {
	m := &EgressMeter{
		sink: sink, every: cfg.FlushEvery, cacheFor: cfg.CacheFor, log: cfg.Log, now: cfg.Now,
		seed: maphash.MakeSeed(),
	}
	if m.every <= 0 {
		m.every = time.Second
	}
	if m.cacheFor <= 0 {
		m.cacheFor = time.Second
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	for i := range m.shards {
		m.shards[i].pending = map[string]int64{}
		m.shards[i].inflight = map[string]int64{}
		m.shards[i].cache = map[string]*allowanceEntry{}
	}
	return m
}

func (m *EgressMeter) shard(userID string) *meterShard {
	return &m.shards[maphash.String(m.seed, userID)%meterShards]
}

// Add counts n bytes delivered to userID. Non-positive counts and the
// empty user (an anonymous download, if there ever is one) are ignored.
func (m *EgressMeter) Add(userID string, n int64) {
	if n <= 0 || userID == "" {
		return
	}
	sh := m.shard(userID)
	sh.mu.Lock()
	sh.pending[userID] += n
	if e := sh.cache[userID]; e != nil {
		e.spent += n
	}
	sh.mu.Unlock()
}

// Pending returns the bytes counted for userID that the sink has not
// acknowledged yet.
func (m *EgressMeter) Pending(userID string) int64 {
	sh := m.shard(userID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.pending[userID] + sh.inflight[userID]
}

// Allowance returns the bytes userID may still receive today (-1:
// unlimited): the sink's figure, read at most about once per CacheFor,
// minus what this meter counted that the figure does not include yet.
func (m *EgressMeter) Allowance(ctx context.Context, userID string) (int64, error) {
	sh := m.shard(userID)
	for {
		now := m.now()
		sh.mu.Lock()
		e := sh.cache[userID]
		if e != nil && e.loading != nil {
			ch := e.loading
			sh.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return 0, fmt.Errorf("egress allowance: %w", ctx.Err())
			}
			if e.err != nil {
				return 0, e.err
			}
			continue
		}
		if e != nil && now.Sub(e.at) < m.cacheFor && e.day == Day(now) {
			v := e.value()
			sh.mu.Unlock()
			return v, nil
		}
		e = &allowanceEntry{loading: make(chan struct{}), spent: sh.pending[userID] + sh.inflight[userID]}
		sh.cache[userID] = e
		sh.mu.Unlock()

		// Others may be waiting for this answer: it must not fail because
		// the request that happened to ask first went away.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), allowanceTimeout)
		base, err := m.sink.Allowance(fctx, userID)
		cancel()

		sh.mu.Lock()
		if err != nil {
			e.err = fmt.Errorf("egress allowance: %w", err)
			delete(sh.cache, userID)
		} else {
			e.base, e.at, e.day = base, now, Day(now)
		}
		close(e.loading)
		e.loading = nil
		v := e.value()
		sh.mu.Unlock()
		if err != nil {
			return 0, e.err
		}
		return v, nil
	}
}

func (e *allowanceEntry) value() int64 {
	if e.base < 0 {
		return Unlimited
	}
	return max(0, e.base-e.spent)
}

// Admit returns the viewer's allowance, or ErrDailyLimit (429, with the
// time until midnight UTC) when it is spent.
func (m *EgressMeter) Admit(ctx context.Context, userID string) (int64, error) {
	a, err := m.Allowance(ctx, userID)
	if err != nil {
		return 0, err
	}
	if a == 0 {
		return 0, LimitError(m.now(), "the daily viewing limit is reached; it resets at 00:00 UTC")
	}
	return a, nil
}

// Flush sends the counts now: the batch that failed last time if there is
// one (as it was, under its id), else everything pending. On failure the
// batch is kept for the next try, except when the sink refuses it as
// invalid, which no retry would change: then it is dropped and logged.
func (m *EgressMeter) Flush(ctx context.Context) error {
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	if m.batch == nil {
		counts := map[string]int64{}
		for i := range m.shards {
			sh := &m.shards[i]
			sh.mu.Lock()
			for u, n := range sh.pending {
				counts[u] += n
			}
			// Swap rather than reallocate: inflight is empty here.
			sh.pending, sh.inflight = sh.inflight, sh.pending
			m.evict(sh)
			sh.mu.Unlock()
		}
		if len(counts) == 0 {
			return nil
		}
		m.batch = &egressBatch{id: uuid.Must(uuid.NewV7()).String(), counts: counts}
	}
	err := m.sink.AddEgress(ctx, m.batch.id, m.batch.counts)
	if err != nil {
		if k := errs.KindOf(err); k != errs.Invalid && k != errs.Validation {
			return fmt.Errorf("flush egress: %w", err)
		}
		m.log.Error("egress batch refused as invalid; dropped", "batch_id", m.batch.id, "users", len(m.batch.counts), "err", err)
	}
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		clear(sh.inflight)
		sh.mu.Unlock()
	}
	m.batch = nil
	if err != nil {
		return fmt.Errorf("flush egress: %w", err)
	}
	return nil
}

// evict drops cached allowances that are no longer used; sh.mu is held.
func (m *EgressMeter) evict(sh *meterShard) {
	now := m.now()
	for u, e := range sh.cache {
		if e.loading == nil && now.Sub(e.at) >= m.cacheFor {
			delete(sh.cache, u)
		}
	}
}

// finalAttempts and finalTimeout bound the flush when the meter stops.
const (
	finalAttempts = 5
	finalTimeout  = 15 * time.Second
)

// Run flushes every FlushEvery until ctx ends, then flushes what is left,
// retrying a few times, so that no counted byte is lost on a clean
// shutdown. Stop the HTTP server first: bytes counted after Run returns
// would wait for a Flush that never comes.
func (m *EgressMeter) Run(ctx context.Context) error {
	t := time.NewTicker(m.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return m.final(context.WithoutCancel(ctx))
		case <-t.C:
			if err := m.Flush(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("egress flush failed; will retry", "err", err)
			}
		}
	}
}

func (m *EgressMeter) final(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, finalTimeout)
	defer cancel()
	var err error
	for i := range finalAttempts {
		if err = m.Flush(ctx); err == nil {
			// A batch that failed before is sent first; what is pending
			// behind it goes in the next round.
			if m.idle() {
				return nil
			}
			continue
		}
		if cerr := backoff.Sleep(ctx, time.Duration(i+1)*200*time.Millisecond); cerr != nil {
			return m.lost(errors.Join(err, cerr))
		}
	}
	if err == nil && m.idle() {
		return nil
	}
	return m.lost(err)
}

// idle reports whether nothing is waiting to be sent.
func (m *EgressMeter) idle() bool {
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	if m.batch != nil {
		return false
	}
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n := len(sh.pending)
		sh.mu.Unlock()
		if n > 0 {
			return false
		}
	}
	return true
}

func (m *EgressMeter) lost(err error) error {
	var total int64
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for _, n := range sh.pending {
			total += n
		}
		for _, n := range sh.inflight {
			total += n
		}
		sh.mu.Unlock()
	}
	m.log.Error("egress counts lost at shutdown: the usage service did not take them", "bytes", total, "err", err)
	return fmt.Errorf("final egress flush: %d bytes not recorded: %w", total, err)
}
