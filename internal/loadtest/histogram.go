package loadtest

import (
	"math"
	"slices"
	"time"
)

// Histogram counts latencies in buckets of four significant decimal digits
// of microseconds: every value under 10 ms is its own bucket (exact), and
// above that a bucket spans at most 0.1 % of its value. Decimal rather than
// binary buckets so that round figures (500 ms, 990 ms) are bucket bounds and
// come back exactly; a bounded relative error rather than raw samples so that
// a long run with millions of requests keeps a small, mergeable memory. It
// is sparse: only buckets that were hit take memory, which keeps the
// per-second histograms of the time series cheap.
//
// The zero value is ready to use. A Histogram is not safe for concurrent
// use; the Recorder shards and locks around it.
type Histogram struct {
	counts   map[int32]uint64
	n        uint64
	sumMicro uint64
	min, max int64 // microseconds, exact
}

// exactBelow is the first value, in microseconds, that shares its bucket
// with others.
const exactBelow = 10000

// maxMicros caps recorded values (about 11.5 days), so that the bucket index
// fits an int32 however absurd the input.
const maxMicros = int64(1e12)

// bucketOf returns the bucket index of v microseconds.
func bucketOf(v int64) int32 {
	if v < exactBelow {
		return int32(v)
	}
	// Strip digits until four remain: v = m·10^e with m in [1000, 9999].
	e := int32(0)
	for v >= exactBelow {
		v /= 10
		e++
	}
	return exactBelow + (e-1)*9000 + int32(v-1000)
}

// lowerBound returns the smallest value in microseconds of bucket i.
func lowerBound(i int32) int64 {
	if i < exactBelow {
		return int64(i)
	}
	i -= exactBelow
	e, m := i/9000+1, int64(i%9000+1000)
	for ; e > 0; e-- {
		m *= 10
	}
	return m
}

// Record adds one latency. Negative values count as zero.
func (h *Histogram) Record(d time.Duration) {
	h.RecordMicros(d.Microseconds())
}

// RecordMicros adds one latency of v microseconds.
func (h *Histogram) RecordMicros(v int64) {
	v = min(max(v, 0), maxMicros)
	if h.counts == nil {
		h.counts = make(map[int32]uint64)
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sumMicro += uint64(v)
}

// Merge adds every count of o into h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make(map[int32]uint64, len(o.counts))
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sumMicro += o.sumMicro
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest recorded value (0 when empty).
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) * time.Microsecond }

// Max returns the largest recorded value, exactly (0 when empty).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) * time.Microsecond }

// Mean returns the arithmetic mean, exactly (0 when empty).
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(float64(h.sumMicro)/float64(h.n)*1000) * time.Nanosecond
}

// Quantile returns the p-th percentile (0 < p ≤ 100) by the nearest-rank
// method: the smallest recorded value that at least p % of the values are
// less than or equal to, rounded down to its bucket's lower bound and kept
// within [Min, Max]. So on 1..1000, p50 is 500 and p99 is 990. An empty
// histogram gives 0.
func (h *Histogram) Quantile(p float64) time.Duration {
	return time.Duration(h.quantileMicros(p)) * time.Microsecond
}

// Quantiles returns several percentiles with one sort of the buckets.
func (h *Histogram) Quantiles(ps ...float64) []time.Duration {
	out := make([]time.Duration, len(ps))
	if h.n == 0 {
		return out
	}
	keys := h.sortedKeys()
	for i, p := range ps {
		out[i] = time.Duration(h.walk(keys, p)) * time.Microsecond
	}
	return out
}

func (h *Histogram) quantileMicros(p float64) int64 {
	if h.n == 0 {
		return 0
	}
	return h.walk(h.sortedKeys(), p)
}

func (h *Histogram) sortedKeys() []int32 {
	keys := make([]int32, 0, len(h.counts))
	for k := range h.counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (h *Histogram) walk(keys []int32, p float64) int64 {
	if p >= 100 {
		return h.max
	}
	// The epsilon keeps float error (99.9·1000/100 = 999.0000000000001)
	// from pushing the rank one past a whole number.
	rank := uint64(math.Ceil(p*float64(h.n)/100 - 1e-9))
	rank = max(rank, 1)
	var seen uint64
	for _, k := range keys {
		seen += h.counts[k]
		if seen >= rank {
			return min(max(lowerBound(k), h.min), h.max)
		}
	}
	return h.max
}
