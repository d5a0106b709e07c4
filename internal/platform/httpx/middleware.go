package httpx

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reel-video/reel/internal/platform/obs"
)

// Metrics are the per-route request metrics of one process.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight prometheus.Gauge
}

// NewMetrics registers the HTTP metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reel_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "reel_http_request_duration_seconds",
			Help:    "HTTP request latency by route and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reel_http_requests_in_flight", Help: "HTTP requests being served.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.inflight)
	return m
}

// MiddlewareConfig configures Wrap.
type MiddlewareConfig struct {
	Logger         *slog.Logger
	Metrics        *Metrics
	TrustedProxies []netip.Prefix // X-Forwarded-For is honoured only from these peers
	// Quiet lists paths that are not access-logged (probes, metrics scrapes).
	Quiet map[string]bool
	// BodyRate is the slowest a request body may arrive (zero: no limit).
	BodyRate BodyRate
}

// maxRequestIDLen bounds a client-supplied request id, which ends up in
// logs and in the activity log.
const maxRequestIDLen = 64

// Wrap is the middleware chain around a process's mux: request id, client
// address, a request-scoped logger, panic recovery, access log and metrics.
// It is one function rather than a stack of wrappers so that the request it
// hands to the mux is the one whose Pattern the mux fills in, which the
// metrics need to label by route rather than by raw path.
func Wrap(next http.Handler, cfg MiddlewareConfig) http.Handler {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-ID")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-ID", id)
		// Downstream services (split mode) and the gateway see the same id.
		r.Header.Set("X-Request-ID", id)
		meta := obs.Request{ID: id, IP: ClientIP(r, cfg.TrustedProxies), UserAgent: truncate(r.UserAgent(), 512)}
		ctx := obs.WithLogger(obs.WithRequest(r.Context(), meta), log)
		r2 := r.WithContext(ctx)
		limitBody(w, r2, cfg.BodyRate, log)

		rec := &recorder{ResponseWriter: w, status: 0}
		if cfg.Metrics != nil {
			cfg.Metrics.inflight.Inc()
			defer cfg.Metrics.inflight.Dec()
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler { //nolint:errorlint // sentinel compared by identity, as net/http does
					panic(v)
				}
				log.Error("panic", "request_id", id, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if rec.status == 0 {
					Error(rec, r2, errors.New("panic"))
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			route := r2.Pattern
			if route == "" {
				route = "unmatched"
			}
			elapsed := time.Since(start)
			if cfg.Metrics != nil {
				cfg.Metrics.requests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
				cfg.Metrics.duration.WithLabelValues(route, r.Method).Observe(elapsed.Seconds())
			}
			if !cfg.Quiet[r.URL.Path] {
				log.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("request_id", id),
					slog.String("method", r.Method), slog.String("path", r.URL.Path),
					slog.String("route", route), slog.Int("status", status),
					slog.Int64("bytes", rec.bytes), slog.Duration("duration", elapsed),
					slog.String("ip", meta.IP))
			}
		}()
		next.ServeHTTP(rec, r2)
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	// A client's id is kept only when it is plainly an id: anything else
	// (spaces, quotes, control or format characters) could forge or break
	// log lines, so it is replaced.
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// ClientIP returns the client's address. X-Forwarded-For is believed only
// when the direct peer is a trusted proxy, and then walked from the right,
// skipping further trusted proxies, so a client cannot forge its address by
// sending the header itself.
func ClientIP(r *http.Request, trusted []netip.Prefix) string {
	peer := r.RemoteAddr
	if host, _, err := net.SplitHostPort(peer); err == nil {
		peer = host
	}
	addr, err := netip.ParseAddr(peer)
	if err != nil || !isTrusted(addr, trusted) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		a, err := netip.ParseAddr(h)
		if err != nil {
			break
		}
		if !isTrusted(a, trusted) {
			return a.String()
		}
		peer = a.String()
	}
	return peer
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// recorder captures the status and byte count and keeps the optional
// interfaces (Flusher, ReaderFrom for sendfile, Hijacker) reachable.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// ReadFrom keeps http.ServeContent's sendfile path: net/http's response
// writer implements io.ReaderFrom and splices files to the socket.
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(r.ResponseWriter, src)
	}
	r.bytes += n
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := r.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("hijack not supported")
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
