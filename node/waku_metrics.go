package node

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// wakuMetrics counts what the Waku edge does: relayed messages by
// outcome, and Store v3 queries by status with the entries they
// returned.
type wakuMetrics struct {
	relayed *prometheus.CounterVec
	queries *prometheus.CounterVec
	entries *prometheus.CounterVec
}

// The outcomes of a relayed message.
const (
	relayRefused   = "refused"   // invalid: not forwarded, sender's score lowered
	relaySkipped   = "skipped"   // forwarded, not stored (ephemeral, version, not kept, ...)
	relayStored    = "stored"    // stored, new
	relayDuplicate = "duplicate" // stored already
	relayRejected  = "rejected"  // refused by the store
)

// newWakuMetrics registers the Waku edge's metrics with reg:
// storesync_relay_messages_total{pubsub_topic, outcome},
// storesync_waku_store_queries_total{status} and
// storesync_waku_store_entries_total{status}.
func newWakuMetrics(reg prometheus.Registerer) (*wakuMetrics, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "storesync", Name: name, Help: help}, labels)
	}
	m := &wakuMetrics{
		relayed: counter("relay_messages_total", "Waku messages relayed on the kept scopes' pubsub topics, by outcome.", "pubsub_topic", "outcome"),
		queries: counter("waku_store_queries_total", "Store v3 queries answered, by status code.", "status"),
		entries: counter("waku_store_entries_total", "Entries (message hashes, with their messages if asked) returned by Store v3 queries.", "status"),
	}
	if err := registerCounters(reg, &m.relayed, &m.queries, &m.entries); err != nil {
		return nil, err
	}
	return m, nil
}

// relay counts n relayed messages of topic with an outcome; m may be nil.
func (m *wakuMetrics) relay(topic, outcome string, n int) {
	if m != nil && n > 0 {
		m.relayed.WithLabelValues(topic, outcome).Add(float64(n))
	}
}

// query counts an answered Store v3 query; m may be nil.
func (m *wakuMetrics) query(status uint32, entries int) {
	if m != nil {
		s := strconv.FormatUint(uint64(status), 10)
		m.queries.WithLabelValues(s).Inc()
		m.entries.WithLabelValues(s).Add(float64(entries))
	}
}
