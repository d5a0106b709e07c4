package app

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The public /metrics answers this machine only; the peer is the
// connection's, so a forwarded header cannot claim to be local.
func TestPublicMetricsAreLocal(t *testing.T) {
	a := &App{prom: prometheus.NewRegistry()}
	h := a.publicMetrics()
	for remote, want := range map[string]int{
		"127.0.0.1:5000":       http.StatusOK,
		"[::1]:5000":           http.StatusOK,
		"[::ffff:127.0.0.1]:1": http.StatusOK,
		"203.0.113.7:5000":     http.StatusForbidden,
		"[2001:db8::1]:5000":   http.StatusForbidden,
		"garbage":              http.StatusForbidden,
	} {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", "127.0.0.1")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("peer %s: %d, want %d", remote, w.Code, want)
		}
		if want == http.StatusForbidden && !strings.Contains(w.Body.String(), "metrics_private") {
			t.Errorf("peer %s: %s", remote, w.Body.String())
		}
	}
}
