package node

import "github.com/prometheus/client_golang/prometheus"

// storeCollector exports the messages stored per scope, read from the
// store at every scrape.
type storeCollector struct {
	store *Store
	desc  *prometheus.Desc
}

func newStoreCollector(s *Store) *storeCollector {
	return &storeCollector{store: s, desc: prometheus.NewDesc("storesync_store_messages",
		"Messages stored, per scope.", []string{"scope"}, nil)}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	for _, sc := range c.store.Scopes() {
		if st, ok := c.store.Stats(sc); ok {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(st.Count), sc.String())
		}
	}
}
