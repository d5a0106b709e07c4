package outbox

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the relay metrics of every outbox in a process, labelled by
// outbox table.
type Metrics struct {
	pending   *prometheus.GaugeVec
	lag       *prometheus.GaugeVec
	delivered *prometheus.CounterVec
	direct    *prometheus.CounterVec
	failed    *prometheus.CounterVec
	parked    *prometheus.CounterVec
}

// NewMetrics registers the outbox metrics with reg. Calling it again with
// the same registry returns metrics backed by the already registered
// collectors, so each service's wiring may call it without coordinating.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	labels := []string{"table"}
	m := &Metrics{}
	var err error
	if m.pending, err = register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "reel_outbox_pending_events",
		Help: "Events waiting in the outbox for delivery to the activity log.",
	}, labels)); err != nil {
		return nil, err
	}
	if m.lag, err = register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "reel_outbox_lag_seconds",
		Help: "Age of the oldest event waiting in the outbox (0 when empty).",
	}, labels)); err != nil {
		return nil, err
	}
	if m.delivered, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reel_outbox_delivered_events_total",
		Help: "Events delivered to the activity log and removed from the outbox.",
	}, labels)); err != nil {
		return nil, err
	}
	if m.direct, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reel_outbox_direct_events_total",
		Help: "Events recorded on their own and delivered straight to the activity log, without the outbox table.",
	}, labels)); err != nil {
		return nil, err
	}
	if m.failed, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reel_outbox_failed_deliveries_total",
		Help: "Delivery attempts that failed and will be retried.",
	}, labels)); err != nil {
		return nil, err
	}
	if m.parked, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reel_outbox_parked_events_total",
		Help: "Events the activity log rejected as invalid; they stay in the outbox for an operator.",
	}, labels)); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector registered before under
// the same description.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("outbox: register metrics: %w", err)
}

// Delivered returns the delivered-events counter of table.
func (m *Metrics) Delivered(table string) prometheus.Counter {
	return m.delivered.WithLabelValues(table)
}

// Failed returns the failed-deliveries counter of table.
func (m *Metrics) Failed(table string) prometheus.Counter { return m.failed.WithLabelValues(table) }
