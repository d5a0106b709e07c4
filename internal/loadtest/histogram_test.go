package loadtest

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestQuantilesOnKnownData(t *testing.T) {
	for _, unit := range []time.Duration{time.Microsecond, time.Millisecond, time.Second} {
		var h Histogram
		for i := 1; i <= 1000; i++ {
			h.Record(time.Duration(i) * unit)
		}
		want := map[float64]time.Duration{50: 500 * unit, 90: 900 * unit, 99: 990 * unit, 99.9: 999 * unit, 100: 1000 * unit, 0.1: unit}
		for p, w := range want {
			if got := h.Quantile(p); got != w {
				t.Errorf("unit %s: p%v = %s, want %s", unit, p, got, w)
			}
		}
		if h.Count() != 1000 || h.Min() != unit || h.Max() != 1000*unit {
			t.Errorf("unit %s: count %d min %s max %s", unit, h.Count(), h.Min(), h.Max())
		}
		if got, want := h.Mean(), 500500*unit/1000; got != want {
			t.Errorf("unit %s: mean %s, want %s", unit, got, want)
		}
		q := h.Quantiles(50, 99)
		if q[0] != 500*unit || q[1] != 990*unit {
			t.Errorf("Quantiles: %v", q)
		}
	}
}

func TestQuantileSmallAndEmpty(t *testing.T) {
	var h Histogram
	if h.Quantile(50) != 0 || h.Mean() != 0 || h.Max() != 0 {
		t.Fatal("empty histogram must give zeros")
	}
	h.Record(7 * time.Millisecond)
	for _, p := range []float64{1, 50, 99, 100} {
		if got := h.Quantile(p); got != 7*time.Millisecond {
			t.Fatalf("one value: p%v = %s", p, got)
		}
	}
	h.Record(-time.Second) // clock trouble counts as zero, not as a panic
	if h.Min() != 0 || h.Quantile(50) != 0 {
		t.Fatalf("negative: min %s p50 %s", h.Min(), h.Quantile(50))
	}
}

// Above 10 ms the buckets are 4 significant digits: at most 0.1 % low, and
// never outside [min, max].
func TestBucketPrecision(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		v := rng.Int64N(maxMicros)
		if rng.IntN(2) == 0 {
			v = rng.Int64N(200000)
		}
		lb := lowerBound(bucketOf(v))
		if lb > v || float64(v-lb) > float64(v)/1000 {
			t.Fatalf("v=%d: bucket lower bound %d", v, lb)
		}
		if v < exactBelow && lb != v {
			t.Fatalf("v=%d below %d not exact: %d", v, exactBelow, lb)
		}
		if bucketOf(lb) != bucketOf(v) {
			t.Fatalf("v=%d: lower bound %d in another bucket", v, lb)
		}
	}
	// Bucket indexes grow with the value, so sorting indexes sorts values.
	prev := int32(-1)
	for _, v := range []int64{0, 9999, 10000, 10010, 99990, 100000, 999999, 1000000, maxMicros} {
		if b := bucketOf(v); b <= prev {
			t.Fatalf("bucketOf(%d)=%d not above %d", v, b, prev)
		} else {
			prev = b
		}
	}
	var h Histogram
	h.RecordMicros(12345678)
	if got := h.Quantile(50); got != 12345678*time.Microsecond {
		t.Fatalf("one large value must come back exactly (clamped to min/max): %s", got)
	}
	h.RecordMicros(12345679)
	h.RecordMicros(12349999)
	if got := h.Quantile(50); got != 12345678*time.Microsecond {
		t.Fatalf("p50 of 3 values in one bucket: %s", got)
	}
}

func TestHistogramMerge(t *testing.T) {
	var all, odd, even, empty Histogram
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i) * time.Millisecond
		all.Record(d)
		if i%2 == 1 {
			odd.Record(d)
		} else {
			even.Record(d)
		}
	}
	var m Histogram
	m.Merge(&odd)
	m.Merge(&even)
	m.Merge(&empty)
	m.Merge(nil)
	for _, p := range []float64{1, 50, 90, 99, 100} {
		if m.Quantile(p) != all.Quantile(p) {
			t.Errorf("p%v: merged %s, whole %s", p, m.Quantile(p), all.Quantile(p))
		}
	}
	if m.Count() != 1000 || m.Min() != time.Millisecond || m.Max() != time.Second || m.Mean() != all.Mean() {
		t.Fatalf("merged: count %d min %s max %s mean %s", m.Count(), m.Min(), m.Max(), m.Mean())
	}
	// Merging into a histogram whose minimum is higher lowers it.
	var hi Histogram
	hi.Record(time.Hour)
	hi.Merge(&odd)
	if hi.Min() != time.Millisecond || hi.Max() != time.Hour {
		t.Fatalf("min %s max %s", hi.Min(), hi.Max())
	}
}
