package loadtest

import (
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Samples land in the bucket of the second they completed in; shards merge
// into the same figures as one shard.
func TestRecorderBucketsAndShards(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	one, many := NewRecorder(start, time.Second, 1), NewRecorder(start, time.Second, 8)
	record := func(shard int, s Sample) {
		one.Record(0, s)
		many.Record(shard, s)
	}
	// Second 0: 10 answers of 10 ms; second 2: 4 of 200 ms, one a 500;
	// second 3: a timeout and an answer of 1.5 s sent in second 1.
	for i := range 10 {
		record(i, Sample{Route: RouteFeed, Start: start.Add(time.Duration(i) * 50 * time.Millisecond), Latency: 10 * time.Millisecond, Status: 200, Bytes: 100})
	}
	for i := range 4 {
		st := 200
		if i == 3 {
			st = 500
		}
		record(i, Sample{Route: RouteFeed, Start: start.Add(2*time.Second + time.Duration(i)*time.Millisecond), Latency: 200 * time.Millisecond, Status: st})
	}
	record(5, Sample{Route: RouteFeed, Start: start.Add(3 * time.Second), Latency: 300 * time.Millisecond, Err: errors.Join(errors.New("dial"), syscall.ECONNREFUSED)})
	record(6, Sample{Route: RouteFeed, Start: start.Add(1800 * time.Millisecond), Latency: 1500 * time.Millisecond, Status: 200})
	record(7, Sample{Route: RouteStorage, Start: start, Latency: time.Millisecond, Status: 404})
	record(7, Sample{Route: RouteStorage, Start: start, Latency: time.Millisecond, Canceled: true, Err: errors.New("canceled")})

	for name, rec := range map[string]*Recorder{"one shard": one, "eight shards": many} {
		stats := rec.Snapshot()
		feed := stats[RouteFeed]
		if feed.Requests != 16 || feed.Errors != 2 || feed.Bytes != 1000 {
			t.Fatalf("%s: requests %d errors %d bytes %d", name, feed.Requests, feed.Errors, feed.Bytes)
		}
		if feed.Status[200] != 14 || feed.Status[500] != 1 || feed.Transport["refused"] != 1 {
			t.Fatalf("%s: status %v transport %v", name, feed.Status, feed.Transport)
		}
		if feed.Latency.Count() != 15 {
			t.Fatalf("%s: a request without an answer has no latency: %d", name, feed.Latency.Count())
		}
		r := feed.Result(RouteFeed, time.Second)
		want := []Point{
			{T: 0, Requests: 10, P50: 10, P99: 10},
			{T: 2, Requests: 4, Errors: 1, P50: 200, P99: 200},
			{T: 3, Requests: 2, Errors: 1, P50: 1500, P99: 1500},
		}
		if len(r.Series) != len(want) {
			t.Fatalf("%s: series %+v", name, r.Series)
		}
		for i := range want {
			if r.Series[i] != want[i] {
				t.Fatalf("%s: point %d = %+v, want %+v", name, i, r.Series[i], want[i])
			}
		}
		// In use from 0 to 3.3 s: 16 requests.
		if r.Throughput < 16/3.31 || r.Throughput > 16/3.29 {
			t.Fatalf("%s: throughput %v", name, r.Throughput)
		}
		if r.Latency.P50 != 10 || r.Latency.Max != 1500 || !r.Read || r.Method != "GET" {
			t.Fatalf("%s: %+v", name, r)
		}
		st := stats[RouteStorage]
		if st.Requests != 1 || st.Errors != 1 || st.Canceled != 1 {
			t.Fatalf("%s: storage %+v", name, st)
		}
	}
}

func TestRecorderConcurrent(t *testing.T) {
	start := time.Now()
	rec := NewRecorder(start, time.Second, 4)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 1000 {
				rec.Record(g, Sample{Route: RouteUsage, Start: start, Latency: time.Duration(i+1) * time.Microsecond, Status: 200})
			}
		})
	}
	wg.Wait()
	u := rec.Snapshot()[RouteUsage]
	if u.Requests != 16000 || u.Latency.Quantile(50) != 500*time.Microsecond || u.Latency.Quantile(99) != 990*time.Microsecond {
		t.Fatalf("requests %d p50 %s p99 %s", u.Requests, u.Latency.Quantile(50), u.Latency.Quantile(99))
	}
}

func TestErrorKind(t *testing.T) {
	for err, want := range map[error]string{
		nil:                   "unknown",
		syscall.ECONNREFUSED:  "refused",
		syscall.ECONNRESET:    "reset",
		syscall.EMFILE:        "too_many_open_files",
		errForeignURL:         "foreign_url",
		errors.New("strange"): "other",
	} {
		if got := errorKind(err); got != want {
			t.Errorf("%v: %s, want %s", err, got, want)
		}
	}
}
