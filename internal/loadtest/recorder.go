package loadtest

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Route names, as the results and the report show them.
const (
	RouteRegister   = "register"
	RouteLogin      = "login"
	RouteAdminLogin = "admin_login"
	RouteFeed       = "feed"
	RouteStorage    = "storage"
	RouteUsage      = "usage"
	RouteLogs       = "logs"
	RouteUpload     = "upload"
	RoutePlayback   = "playback"
	RouteMedia      = "media"
	RouteDelete     = "delete"
	RouteAdminLogs  = "admin_logs"
	// The web app's pages, with the cookie session of its login form.
	RouteWebLogin   = "web_login"
	RoutePageFeed   = "page_feed"
	RoutePageWatch  = "page_watch"
	RoutePageMine   = "page_mine"
	RouteWebRefresh = "web_refresh"
	// The first-rendition scenario's looks at a video and at the queue.
	RouteVideo = "video"
	RouteJobs  = "jobs"
)

// RouteInfo is a route's method and path as API.md (or the web app) writes
// them.
type RouteInfo struct {
	Name, Method, Path string
	Read               bool // the p99 < 100 ms target of API reads applies
	Page               bool // a server-rendered page: the p99 < 50 ms target applies
}

// Routes lists every route the tool drives, in report order.
var Routes = []RouteInfo{
	{RouteRegister, "POST", "/api/v1/auth/register", false, false},
	{RouteLogin, "POST", "/api/v1/auth/login", false, false},
	{RouteAdminLogin, "POST", "/api/v1/auth/login", false, false},
	{RouteWebLogin, "POST", "/login", false, false},
	{RouteFeed, "GET", "/api/v1/videos", true, false},
	{RouteStorage, "GET", "/api/v1/storage/me", true, false},
	{RouteUsage, "GET", "/api/v1/usage/me", true, false},
	{RouteLogs, "GET", "/api/v1/logs/me", true, false},
	{RoutePageFeed, "GET", "/", false, true},
	{RoutePageWatch, "GET", "/watch/{id}", false, true},
	{RoutePageMine, "GET", "/mine", false, true},
	{RouteUpload, "POST", "/api/v1/videos", false, false},
	{RoutePlayback, "POST", "/api/v1/videos/{id}/playback", false, false},
	{RouteMedia, "GET", "/media/{…}", false, false},
	{RouteDelete, "DELETE", "/api/v1/videos/{id}", false, false},
	{RouteAdminLogs, "GET", "/api/v1/logs", true, false},
	{RouteWebRefresh, "GET", "/auth/refresh", false, false},
	{RouteVideo, "GET", "/api/v1/videos/{id}", false, false},
	{RouteJobs, "GET", "/api/v1/jobs", false, false},
	// The viewers scenario's files: their latency is the time to the
	// answer's first byte.
	{RouteHLSMaster, "GET", "/media/{…}/master.m3u8", false, false},
	{RouteHLSPlaylist, "GET", "/media/{…}/{rung}.m3u8", false, false},
	{RouteHLSInit, "GET", "/media/{…}/{rung}.mp4 (init range)", false, false},
	{RouteHLSSegment, "GET", "/media/{…}/{rung}.mp4 (segment range)", false, false},
}

func routeInfo(name string) RouteInfo {
	for _, r := range Routes {
		if r.Name == name {
			return r
		}
	}
	return RouteInfo{Name: name}
}

// Sample is one finished request.
type Sample struct {
	Route string
	// Start is when the request was sent; Latency runs from then to the
	// last byte of the answer.
	Start   time.Time
	Latency time.Duration
	// Status is the HTTP status, 0 when no answer came (Err says why).
	Status int
	Err    error
	// Canceled marks a request cut short because the run was interrupted.
	Canceled bool
	// Gone marks a 404 for a video its owner deleted after the user saw
	// it: the right answer, so not an error.
	Gone bool
	// Redirect marks a 303 that is the right answer (a web form's post, a
	// page sending the browser through the session's refresh): not an
	// error either.
	Redirect bool
	Bytes    int64
}

// OK reports whether the sample is a success: a 2xx answer.
func (s Sample) OK() bool { return s.Status >= 200 && s.Status < 300 }

// failed reports whether the sample counts as an error.
func (s Sample) failed() bool { return !s.OK() && !s.Gone && !s.Redirect }

// RouteStats accumulates one route's samples. Stats of several shards (or
// several runs with the same start) merge with Merge.
type RouteStats struct {
	Requests, Errors, Canceled, Gone uint64
	Status                           map[int]uint64
	Transport                        map[string]uint64
	ErrorSamples                     map[string]string
	Bytes                            int64
	Latency                          Histogram
	// Series holds one bucket per time slot since the recorder's start;
	// nil entries had no answers.
	Series      []*Bucket
	First, Last time.Duration // first request sent, last answer, since start
}

// Bucket is a route's activity in one time slot, by completion time.
type Bucket struct {
	Requests, Errors uint64
	Latency          Histogram
}

func newRouteStats() *RouteStats {
	return &RouteStats{Status: map[int]uint64{}, Transport: map[string]uint64{}, ErrorSamples: map[string]string{}}
}

func (rs *RouteStats) add(s Sample, start time.Time, width time.Duration) {
	if s.Canceled {
		rs.Canceled++
		return
	}
	begin, end := s.Start.Sub(start), s.Start.Add(s.Latency).Sub(start)
	if rs.Requests == 0 || begin < rs.First {
		rs.First = begin
	}
	rs.Last = max(rs.Last, end)
	rs.Requests++
	rs.Bytes += s.Bytes
	failed := s.failed()
	if failed {
		rs.Errors++
	}
	if s.Gone {
		rs.Gone++
	}
	if s.Status == 0 {
		kind := errorKind(s.Err)
		rs.Transport[kind]++
		if _, ok := rs.ErrorSamples[kind]; !ok && s.Err != nil {
			rs.ErrorSamples[kind] = s.Err.Error()
		}
	} else {
		rs.Status[s.Status]++
		rs.Latency.Record(s.Latency)
	}
	i := int(max(end, 0) / width)
	for len(rs.Series) <= i {
		rs.Series = append(rs.Series, nil)
	}
	b := rs.Series[i]
	if b == nil {
		b = &Bucket{}
		rs.Series[i] = b
	}
	b.Requests++
	if failed {
		b.Errors++
	}
	if s.Status != 0 {
		b.Latency.Record(s.Latency)
	}
}

// Merge adds o into rs. Both must count from the same start with the same
// bucket width.
func (rs *RouteStats) Merge(o *RouteStats) {
	if o.Requests > 0 {
		if rs.Requests == 0 || o.First < rs.First {
			rs.First = o.First
		}
		rs.Last = max(rs.Last, o.Last)
	}
	rs.Requests += o.Requests
	rs.Errors += o.Errors
	rs.Canceled += o.Canceled
	rs.Gone += o.Gone
	rs.Bytes += o.Bytes
	for k, v := range o.Status {
		rs.Status[k] += v
	}
	for k, v := range o.Transport {
		rs.Transport[k] += v
	}
	for k, v := range o.ErrorSamples {
		if _, ok := rs.ErrorSamples[k]; !ok {
			rs.ErrorSamples[k] = v
		}
	}
	rs.Latency.Merge(&o.Latency)
	for len(rs.Series) < len(o.Series) {
		rs.Series = append(rs.Series, nil)
	}
	for i, b := range o.Series {
		if b == nil {
			continue
		}
		if rs.Series[i] == nil {
			rs.Series[i] = &Bucket{}
		}
		rs.Series[i].Requests += b.Requests
		rs.Series[i].Errors += b.Errors
		rs.Series[i].Latency.Merge(&b.Latency)
	}
}

// Recorder collects samples from many goroutines. It is sharded so that
// thousands of virtual users do not queue on one lock: each user records
// into its own shard, and Snapshot merges them.
type Recorder struct {
	start  time.Time
	width  time.Duration
	shards []recShard
}

type recShard struct {
	mu     sync.Mutex
	routes map[string]*RouteStats
	_      [40]byte // keep neighbouring shards' locks off one cache line
}

// NewRecorder returns a recorder counting time from start in buckets of
// width, with n shards.
func NewRecorder(start time.Time, width time.Duration, n int) *Recorder {
	if width <= 0 {
		width = time.Second
	}
	n = max(n, 1)
	r := &Recorder{start: start, width: width, shards: make([]recShard, n)}
	for i := range r.shards {
		r.shards[i].routes = map[string]*RouteStats{}
	}
	return r
}

// Record adds a sample to shard (any int; it is reduced modulo the count).
func (r *Recorder) Record(shard int, s Sample) {
	sh := &r.shards[uint(shard)%uint(len(r.shards))]
	sh.mu.Lock()
	rs := sh.routes[s.Route]
	if rs == nil {
		rs = newRouteStats()
		sh.routes[s.Route] = rs
	}
	rs.add(s, r.start, r.width)
	sh.mu.Unlock()
}

// Snapshot merges every shard into one set of stats per route.
func (r *Recorder) Snapshot() map[string]*RouteStats {
	out := map[string]*RouteStats{}
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for name, rs := range sh.routes {
			m := out[name]
			if m == nil {
				m = newRouteStats()
				out[name] = m
			}
			m.Merge(rs)
		}
		sh.mu.Unlock()
	}
	return out
}

// Width returns the bucket width.
func (r *Recorder) Width() time.Duration { return r.width }

// Result turns a route's stats into its reported figures.
func (rs *RouteStats) Result(name string, width time.Duration) RouteResult {
	info := routeInfo(name)
	q := rs.Latency.Quantiles(50, 90, 99)
	out := RouteResult{
		Name: name, Method: info.Method, Path: info.Path, Read: info.Read, Page: info.Page,
		Requests: rs.Requests, OK: rs.Requests - rs.Errors - rs.Gone, Errors: rs.Errors, Canceled: rs.Canceled, Gone: rs.Gone,
		Status: map[int]uint64{}, Bytes: rs.Bytes,
		Latency: Latency{
			Min: ms(rs.Latency.Min()), Mean: ms(rs.Latency.Mean()),
			P50: ms(q[0]), P90: ms(q[1]), P99: ms(q[2]), Max: ms(rs.Latency.Max()),
		},
		Series: []Point{},
	}
	for k, v := range rs.Status {
		out.Status[k] = v
	}
	if len(rs.Transport) > 0 {
		out.Transport = map[string]uint64{}
		for k, v := range rs.Transport {
			out.Transport[k] = v
		}
		out.ErrorSamples = map[string]string{}
		for k, v := range rs.ErrorSamples {
			out.ErrorSamples[k] = v
		}
	}
	span := max(rs.Last-rs.First, time.Second)
	if rs.Requests > 0 {
		out.Throughput = float64(rs.Requests) / span.Seconds()
	}
	for i, b := range rs.Series {
		if b == nil {
			continue
		}
		bq := b.Latency.Quantiles(50, 99)
		out.Series = append(out.Series, Point{
			T:        (time.Duration(i) * width).Seconds(),
			Requests: b.Requests, Errors: b.Errors,
			P50: ms(bq[0]), P99: ms(bq[1]),
		})
	}
	return out
}

// errorKind names why a request got no answer, coarsely enough to count.
func errorKind(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return "unknown"
	case errors.Is(err, errForeignURL):
		return "foreign_url"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "reset"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too_many_open_files"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no_free_port"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	default:
		return "other"
	}
}
