package gossip

import "github.com/prometheus/client_golang/prometheus"

// MetricsTracer receives what gossip does. Implementations must be safe
// for concurrent use.
type MetricsTracer interface {
	// AnnouncementPublished counts an announcement and its bytes.
	AnnouncementPublished(group string, bytes int)
	// AnnouncementReceived counts a valid announcement from another member.
	AnnouncementReceived(group string)
	// SessionStarted counts a session gossip started; trigger is
	// "announcement", "startup", "idle", "demand" or "recent".
	SessionStarted(group, trigger string)
}

type metricsTracer struct {
	published, bytes, received, sessions *prometheus.CounterVec
}

// NewMetricsTracer returns a Prometheus MetricsTracer registered with reg
// (storesync_gossip_* metrics, labelled by group).
func NewMetricsTracer(reg prometheus.Registerer) MetricsTracer {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "storesync", Subsystem: "gossip", Name: name, Help: help}, labels)
		if err := reg.Register(c); err != nil {
			if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
				return are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
		return c
	}
	return &metricsTracer{
		published: counter("announcements_published_total", "Announcements published.", "group"),
		bytes:     counter("announcement_bytes_total", "Bytes of announcements published.", "group"),
		received:  counter("announcements_received_total", "Valid announcements received.", "group"),
		sessions:  counter("sessions_started_total", "Sync sessions started by gossip.", "group", "trigger"),
	}
}

func (m *metricsTracer) AnnouncementPublished(group string, bytes int) {
	m.published.WithLabelValues(group).Inc()
	m.bytes.WithLabelValues(group).Add(float64(bytes))
}

func (m *metricsTracer) AnnouncementReceived(group string) { m.received.WithLabelValues(group).Inc() }

func (m *metricsTracer) SessionStarted(group, trigger string) {
	m.sessions.WithLabelValues(group, trigger).Inc()
}
