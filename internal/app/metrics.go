package app

import (
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
)

// errMetricsPrivate answers /metrics on the public address to anyone but
// this machine: metrics tell an outsider how busy reel is, which routes
// fail and which services it talks to.
var errMetricsPrivate = errs.New(errs.Forbidden, "metrics_private",
	"metrics are served to this machine only; set REEL_METRICS_ADDR to serve them on a private address")

// metricsHandler is Prometheus' handler for the process's registry.
func (a *App) metricsHandler() http.Handler {
	return promhttp.HandlerFor(a.prom, promhttp.HandlerOpts{})
}

// publicMetrics serves /metrics on the public address to loopback peers
// only. The peer is the TCP connection's, never a forwarded header: a
// gateway or load balancer on this machine does not route /metrics.
func (a *App) publicMetrics() http.Handler {
	h := a.metricsHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackPeer(r.RemoteAddr) {
			httpx.Error(w, r, errMetricsPrivate)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func loopbackPeer(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// serveMetrics serves /metrics on a listener of its own (REEL_METRICS_ADDR),
// for a scraper on a private network (a pod's address in Kubernetes). The
// returned function stops it.
func (a *App) serveMetrics(addr string) (func(), error) {
	ln, err := listen(addr, "REEL_METRICS_ADDR", "metrics-addr")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	a.log.Info("serving metrics", "addr", ln.Addr().String())
	return a.serveAside(srv, ln, "metrics"), nil
}
