package protocol

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const metricNamespace = "storesync"

// MetricsTracer receives what the service does. Implementations must be
// safe for concurrent use; a nil tracer means no metrics.
type MetricsTracer interface {
	// SessionStarted and SessionFinished bracket a sync session; role is
	// "client" or "server", outcome "ok" or an error class.
	SessionStarted(role string)
	SessionFinished(role, outcome string, d time.Duration)
	// RoundTrips counts reconciliation round trips of a scope.
	RoundTrips(scope string, n int)
	// Bytes counts wire bytes of a scope; direction is "in" or "out".
	Bytes(scope, direction string, n int64)
	// MessagesReceived counts messages stored from a peer.
	MessagesReceived(scope string, n int)
	// MessagesRejected counts messages dropped; reason is "hash",
	// "scope", "invalid", "too_large", "ahead" or "vetoed".
	MessagesRejected(scope, reason string, n int)
	// MessagesSent counts messages served to a peer.
	MessagesSent(scope string, n int)
	// CaughtUp counts messages streamed in by a catch-up (new, held
	// already or rejected) and their wire bytes.
	CaughtUp(scope string, messages int, bytes int64)
}

// metricsTracer is the Prometheus MetricsTracer.
type metricsTracer struct {
	sessions   *prometheus.CounterVec
	active     *prometheus.GaugeVec
	duration   *prometheus.HistogramVec
	roundTrips *prometheus.CounterVec
	bytes      *prometheus.CounterVec
	received   *prometheus.CounterVec
	rejected   *prometheus.CounterVec
	sent       *prometheus.CounterVec
	catchUp    *prometheus.CounterVec
	catchUpB   *prometheus.CounterVec
}

// MetricsOption configures NewMetricsTracer.
type MetricsOption func(*metricsConfig)

type metricsConfig struct{ reg prometheus.Registerer }

// WithRegisterer registers the metrics with reg. Default
// prometheus.DefaultRegisterer.
func WithRegisterer(reg prometheus.Registerer) MetricsOption {
	return func(c *metricsConfig) { c.reg = reg }
}

// NewMetricsTracer returns a MetricsTracer that exports Prometheus
// metrics named storesync_*, labelled by scope where they concern one.
func NewMetricsTracer(opts ...MetricsOption) MetricsTracer {
	cfg := metricsConfig{reg: prometheus.DefaultRegisterer}
	for _, o := range opts {
		o(&cfg)
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricNamespace, Name: name, Help: help}, labels)
	}
	m := &metricsTracer{
		sessions: counter("sessions_total", "Sync sessions by role and outcome.", "role", "outcome"),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: metricNamespace, Name: "sessions_active",
			Help: "Sync sessions running now."}, []string{"role"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: metricNamespace,
			Name: "session_duration_seconds", Help: "Duration of sync sessions.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"role"}),
		roundTrips: counter("round_trips_total", "Reconciliation round trips.", "scope"),
		bytes:      counter("bytes_total", "Wire bytes of sync and fetch.", "scope", "direction"),
		received:   counter("messages_received_total", "Messages received and stored.", "scope"),
		rejected:   counter("messages_rejected_total", "Messages received and dropped.", "scope", "reason"),
		sent:       counter("messages_sent_total", "Messages served to peers.", "scope"),
		catchUp:    counter("catchup_messages_total", "Messages streamed in by catch-ups.", "scope"),
		catchUpB:   counter("catchup_bytes_total", "Wire bytes of catch-up streams received.", "scope"),
	}
	for _, c := range []prometheus.Collector{m.sessions, m.active, m.duration, m.roundTrips, m.bytes, m.received,
		m.rejected, m.sent, m.catchUp, m.catchUpB} {
		// A second tracer on the same registry reuses the first's
		// collectors rather than failing.
		if err := cfg.reg.Register(c); err != nil {
			if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
				reuse(c, are.ExistingCollector, m)
			}
		}
	}
	return m
}

// reuse points m at an already registered collector of the same name.
func reuse(mine, existing prometheus.Collector, m *metricsTracer) {
	switch mine {
	case m.sessions:
		m.sessions = existing.(*prometheus.CounterVec)
	case m.active:
		m.active = existing.(*prometheus.GaugeVec)
	case m.duration:
		m.duration = existing.(*prometheus.HistogramVec)
	case m.roundTrips:
		m.roundTrips = existing.(*prometheus.CounterVec)
	case m.bytes:
		m.bytes = existing.(*prometheus.CounterVec)
	case m.received:
		m.received = existing.(*prometheus.CounterVec)
	case m.rejected:
		m.rejected = existing.(*prometheus.CounterVec)
	case m.sent:
		m.sent = existing.(*prometheus.CounterVec)
	case m.catchUp:
		m.catchUp = existing.(*prometheus.CounterVec)
	case m.catchUpB:
		m.catchUpB = existing.(*prometheus.CounterVec)
	}
}

func (m *metricsTracer) SessionStarted(role string) { m.active.WithLabelValues(role).Inc() }

func (m *metricsTracer) SessionFinished(role, outcome string, d time.Duration) {
	m.active.WithLabelValues(role).Dec()
	m.sessions.WithLabelValues(role, outcome).Inc()
	m.duration.WithLabelValues(role).Observe(d.Seconds())
}

func (m *metricsTracer) RoundTrips(scope string, n int) {
	m.roundTrips.WithLabelValues(scope).Add(float64(n))
}

func (m *metricsTracer) Bytes(scope, direction string, n int64) {
	m.bytes.WithLabelValues(scope, direction).Add(float64(n))
}

func (m *metricsTracer) MessagesReceived(scope string, n int) {
	m.received.WithLabelValues(scope).Add(float64(n))
}

func (m *metricsTracer) MessagesRejected(scope, reason string, n int) {
	m.rejected.WithLabelValues(scope, reason).Add(float64(n))
}

func (m *metricsTracer) MessagesSent(scope string, n int) {
	m.sent.WithLabelValues(scope).Add(float64(n))
}

func (m *metricsTracer) CaughtUp(scope string, messages int, bytes int64) {
	m.catchUp.WithLabelValues(scope).Add(float64(messages))
	m.catchUpB.WithLabelValues(scope).Add(float64(bytes))
}
