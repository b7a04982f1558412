package node

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/storesync/storesync/reconcile"
)

// snapshotObserver is told what exports and imports move, batch by batch.
// Implementations must be safe for concurrent use.
type snapshotObserver interface {
	// exported counts messages and bytes written to a snapshot.
	exported(sc reconcile.Scope, msgs int, bytes int64)
	// imported counts the messages of a stored batch by outcome, and
	// the batch's bytes in the file.
	imported(sc reconcile.Scope, added, duplicates, rejected int, bytes int64)
}

// snapshotMetrics is the Prometheus snapshotObserver of a node.
type snapshotMetrics struct {
	messages *prometheus.CounterVec
	bytes    *prometheus.CounterVec
}

var _ snapshotObserver = (*snapshotMetrics)(nil)

// newSnapshotMetrics registers the snapshot metrics with reg:
// storesync_snapshot_messages_total{scope, op, result} and
// storesync_snapshot_bytes_total{scope, op}, op being "export" or
// "import" and result "exported", "added", "duplicate" or "rejected". A
// registry that has them already (a second node on it) lends its own.
func newSnapshotMetrics(reg prometheus.Registerer) (*snapshotMetrics, error) {
	m := &snapshotMetrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "storesync", Name: "snapshot_messages_total",
			Help: "Messages written to snapshot files (op export) or read from them and stored (op import), by outcome."},
			[]string{"scope", "op", "result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "storesync", Name: "snapshot_bytes_total",
			Help: "Bytes of snapshot files written (op export) or stored (op import)."},
			[]string{"scope", "op"}),
	}
	if err := registerCounters(reg, &m.messages, &m.bytes); err != nil {
		return nil, err
	}
	return m, nil
}

// registerCounters registers each counter with reg, or points it at the
// one reg has already under its name (a second node on one registry).
func registerCounters(reg prometheus.Registerer, cs ...**prometheus.CounterVec) error {
	for _, c := range cs {
		err := reg.Register(*c)
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				*c, err = existing, nil
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (m *snapshotMetrics) exported(sc reconcile.Scope, msgs int, bytes int64) {
	s := sc.String()
	m.messages.WithLabelValues(s, "export", "exported").Add(float64(msgs))
	m.bytes.WithLabelValues(s, "export").Add(float64(bytes))
}

func (m *snapshotMetrics) imported(sc reconcile.Scope, added, duplicates, rejected int, bytes int64) {
	s := sc.String()
	m.messages.WithLabelValues(s, "import", "added").Add(float64(added))
	m.messages.WithLabelValues(s, "import", "duplicate").Add(float64(duplicates))
	m.messages.WithLabelValues(s, "import", "rejected").Add(float64(rejected))
	m.bytes.WithLabelValues(s, "import").Add(float64(bytes))
}
