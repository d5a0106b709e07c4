package usage_test

import (
	"context"
	"errors"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/authn/authntest"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
	"github.com/reel-video/reel/internal/usage"
)

// fakeSink records batches and can be made to fail.
type fakeSink struct {
	mu        sync.Mutex
	fail      error
	batches   []string
	totals    map[string]int64
	seen      map[string]bool
	allowance int64
	reads     atomic.Int64
}

func newFakeSink() *fakeSink {
	return &fakeSink{totals: map[string]int64{}, seen: map[string]bool{}, allowance: 1000}
}

func (f *fakeSink) AddEgress(_ context.Context, id string, bytes map[string]int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, id)
	if f.fail != nil {
		return f.fail
	}
	if f.seen[id] {
		return nil
	}
	f.seen[id] = true
	for u, n := range bytes {
		f.totals[u] += n
	}
	return nil
}

func (f *fakeSink) Allowance(context.Context, string) (int64, error) {
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return 0, f.fail
	}
	return f.allowance, nil
}

func (f *fakeSink) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

func (f *fakeSink) total(u string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.totals[u]
}

func TestMeterRetriesFailedFlush(t *testing.T) {
	ctx := t.Context()
	sink := newFakeSink()
	m := usage.NewEgressMeter(sink, usage.MeterConfig{})
	a, b := authntest.NewUserID(), authntest.NewUserID()
	m.Add(a, 100)
	m.Add(a, 50)
	m.Add(b, 7)
	m.Add(b, -3) // ignored
	m.Add("", 9) // ignored

	sink.setFail(errs.ErrUnavailable)
	if err := m.Flush(ctx); !errors.Is(err, errs.ErrUnavailable) {
		t.Fatalf("flush: %v", err)
	}
	if m.Pending(a) != 150 || m.Pending(b) != 7 {
		t.Fatalf("counts lost after a failed flush: %d %d", m.Pending(a), m.Pending(b))
	}
	// Counts added meanwhile wait for the next batch.
	m.Add(a, 1)
	if err := m.Flush(ctx); err == nil {
		t.Fatal("flush succeeded against a failing sink")
	}
	sink.setFail(nil)
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// The retried batch kept its id and content.
	if len(sink.batches) != 3 || sink.batches[0] != sink.batches[1] || sink.batches[1] != sink.batches[2] {
		t.Fatalf("batches %v", sink.batches)
	}
	if sink.total(a) != 150 || sink.total(b) != 7 || m.Pending(a) != 1 {
		t.Fatalf("after retry: a %d b %d pending %d", sink.total(a), sink.total(b), m.Pending(a))
	}
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if sink.total(a) != 151 || m.Pending(a) != 0 || len(sink.batches) != 4 || sink.batches[3] == sink.batches[0] {
		t.Fatalf("next batch: %d %v", sink.total(a), sink.batches)
	}
	// Nothing pending: no call.
	if err := m.Flush(ctx); err != nil || len(sink.batches) != 4 {
		t.Fatalf("empty flush: %v %v", err, sink.batches)
	}
	// A batch refused as invalid is dropped, not retried for ever.
	m.Add(a, 5)
	sink.setFail(usage.ErrInvalid)
	if err := m.Flush(ctx); err == nil {
		t.Fatal("want the refusal")
	}
	sink.setFail(nil)
	if m.Pending(a) != 0 {
		t.Fatalf("invalid batch kept: %d", m.Pending(a))
	}
}

func TestMeterFlushesOnStop(t *testing.T) {
	sink := newFakeSink()
	m := usage.NewEgressMeter(sink, usage.MeterConfig{FlushEvery: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	const writers, each = 20, 1000
	users := []string{authntest.NewUserID(), authntest.NewUserID(), authntest.NewUserID()}
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				m.Add(users[(i+j)%len(users)], 3)
			}
		}()
	}
	wg.Wait()
	// A failure at the first stop attempt: the final flush retries.
	sink.setFail(errs.ErrUnavailable)
	go func() {
		time.Sleep(100 * time.Millisecond)
		sink.setFail(nil)
	}()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, u := range users {
		total += sink.total(u)
	}
	if total != writers*each*3 {
		t.Fatalf("delivered %d bytes, counted %d", total, writers*each*3)
	}
}

// TestMeterConcurrentFlush adds while flushing: every byte is delivered
// exactly once.
func TestMeterConcurrentFlush(t *testing.T) {
	sink := newFakeSink()
	m := usage.NewEgressMeter(sink, usage.MeterConfig{FlushEvery: time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	user := authntest.NewUserID()
	var wg sync.WaitGroup
	var flaky atomic.Bool
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5000 {
				m.Add(user, 1)
				if j%500 == 0 {
					// Flip the sink between failing and working.
					if flaky.Load() {
						sink.setFail(nil)
					} else {
						sink.setFail(errs.ErrUnavailable)
					}
					flaky.Store(!flaky.Load())
				}
			}
		}()
	}
	wg.Wait()
	sink.setFail(nil)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := sink.total(user); got != 8*5000 {
		t.Fatalf("delivered %d, want %d", got, 8*5000)
	}
}

func TestMeterAllowanceCache(t *testing.T) {
	ctx := t.Context()
	sink := newFakeSink()
	c := &clock{t: day0.Add(noon)}
	m := usage.NewEgressMeter(sink, usage.MeterConfig{CacheFor: time.Second, Now: c.Now})
	user := authntest.NewUserID()
	if a, err := m.Allowance(ctx, user); err != nil || a != 1000 {
		t.Fatalf("allowance %d %v", a, err)
	}
	// Cached, and what is counted since is subtracted.
	m.Add(user, 300)
	if a, _ := m.Allowance(ctx, user); a != 700 || sink.reads.Load() != 1 {
		t.Fatalf("cached allowance %d after %d reads", a, sink.reads.Load())
	}
	// Concurrent askers share one read.
	c.Advance(2 * time.Second)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The sink has not heard of the 300 bytes yet: the meter
			// subtracts them from its figure.
			if a, err := m.Allowance(ctx, user); err != nil || a != 700 {
				t.Errorf("allowance %d %v", a, err)
			}
		}()
	}
	wg.Wait()
	if n := sink.reads.Load(); n < 2 || n > 3 {
		t.Fatalf("%d reads for 20 concurrent askers", n)
	}
	// Spent: Admit refuses with the time until midnight.
	m.Add(user, 700)
	if _, err := m.Admit(ctx, user); !errors.Is(err, usage.ErrDailyLimit) {
		t.Fatalf("admit: %v", err)
	} else if e, _ := errs.As(err); e.RetryAfter != day0.AddDate(0, 0, 1).Sub(c.Now()) {
		t.Fatalf("retry after %s", e.RetryAfter)
	}
	// A new day does not reuse yesterday's figure.
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	reads := sink.reads.Load()
	c.Set(day0.Add(24*time.Hour + time.Millisecond))
	if _, err := m.Allowance(ctx, user); err != nil || sink.reads.Load() != reads+1 {
		t.Fatalf("stale across midnight: %v, %d reads", err, sink.reads.Load())
	}
	sink.setFail(errs.ErrUnavailable)
	c.Advance(2 * time.Second)
	if _, err := m.Allowance(ctx, user); !errors.Is(err, errs.ErrUnavailable) {
		t.Fatalf("failing sink: %v", err)
	}
	sink.setFail(nil)
	if a, err := m.Allowance(ctx, user); err != nil || a != 1000 {
		t.Fatalf("after failure: %d %v", a, err)
	}
	unlimited := newFakeSink()
	unlimited.allowance = -1
	m2 := usage.NewEgressMeter(unlimited, usage.MeterConfig{})
	m2.Add(user, 1<<40)
	if a, _ := m2.Allowance(ctx, user); a != usage.Unlimited {
		t.Fatalf("unlimited: %d", a)
	}
}

// TestMeterWithService runs the meter against the real service on both
// engines: every byte counted before the stop is in the day's counter.
func TestMeterWithService(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		svc, _, _ := newService(t, db)
		m := usage.NewEgressMeter(svc, usage.MeterConfig{FlushEvery: 10 * time.Millisecond})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		want := map[string]int64{}
		for range 5 {
			want[authntest.NewUserID()] = 0
		}
		users := maps.Keys(want)
		i := 0
		for u := range users {
			for j := range 200 {
				n := int64(1000 + i + j)
				m.Add(u, n)
				want[u] += n
			}
			i++
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for u, n := range want {
			st, err := svc.Today(t.Context(), u)
			if err != nil {
				t.Fatal(err)
			}
			if st.Egress.UsedBytes != n {
				t.Fatalf("egress of %s: %d, want %d", u, st.Egress.UsedBytes, n)
			}
		}
	}, usage.Migrations(), usage.MigrationTable)
}
