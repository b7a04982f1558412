package protocol

import (
	"fmt"
	"log/slog"
	"time"
)

// wakuStoreConfig holds the options of NewWakuStore.
type wakuStoreConfig struct {
	defaultLimit, maxLimit int
	maxPageBytes           int
	maxContentTopics       int
	maxHashes              int
	maxRequestBytes        int
	rate                   int // queries a peer may start a minute
	activePerPeer          int
	activeTotal            int
	idlePerPeer, idleTotal int
	timeout                time.Duration
	logger                 *slog.Logger
	hook                   func(status uint32, entries int)
}

func defaultWakuStoreConfig() wakuStoreConfig {
	return wakuStoreConfig{
		defaultLimit:     20,
		maxLimit:         100,
		maxPageBytes:     2 << 20,
		maxContentTopics: 32,
		maxHashes:        100,
		maxRequestBytes:  64 << 10,
		rate:             1200,
		activePerPeer:    4,
		activeTotal:      64,
		idlePerPeer:      8,
		idleTotal:        1024,
		timeout:          30 * time.Second,
		logger:           log,
	}
}

// WakuStoreOption configures NewWakuStore.
type WakuStoreOption func(*wakuStoreConfig) error

// WithPageLimits sets the page size of a query that sets none and the
// most a query may ask for. Default 20 and 100.
func WithPageLimits(def, max int) WakuStoreOption {
	return func(c *wakuStoreConfig) error {
		if def < 1 || max < def || max > 10_000 {
			return fmt.Errorf("%w: WithPageLimits(%d, %d)", errOption, def, max)
		}
		c.defaultLimit, c.maxLimit = def, max
		return nil
	}
}

// WithPageBytes caps the wire size of the messages of one page; a page
// ends early past it, with one message at least. Default 2 MiB.
func WithPageBytes(n int) WakuStoreOption {
	return func(c *wakuStoreConfig) error {
		if n < 64<<10 || n > 64<<20 {
			return fmt.Errorf("%w: WithPageBytes(%d)", errOption, n)
		}
		c.maxPageBytes = n
		return nil
	}
}

// WithQueryRate sets how many queries a peer may start a minute, and the
// queries it may have in progress at once; in total, 16 times each.
// Default 1,200 and 4. A query past them is answered with status 429.
func WithQueryRate(perMinute, active int) WakuStoreOption {
	return func(c *wakuStoreConfig) error {
		if perMinute < 1 || active < 1 {
			return fmt.Errorf("%w: WithQueryRate(%d, %d)", errOption, perMinute, active)
		}
		c.rate, c.activePerPeer, c.activeTotal = perMinute, active, 16*active
		return nil
	}
}

// WithIdleStreams bounds the streams opened and not yet used: clients
// (js-waku) open store streams ahead of their queries, so such a stream
// has no deadline until its request begins. Past perPeer of a peer's, or
// total in all, the oldest is reset. Default 8 and 1,024.
func WithIdleStreams(perPeer, total int) WakuStoreOption {
	return func(c *wakuStoreConfig) error {
		if perPeer < 1 || total < perPeer {
			return fmt.Errorf("%w: WithIdleStreams(%d, %d)", errOption, perPeer, total)
		}
		c.idlePerPeer, c.idleTotal = perPeer, total
		return nil
	}
}

// WithWakuStoreLogger sets the logger of the Store v3 server.
func WithWakuStoreLogger(l *slog.Logger) WakuStoreOption {
	return func(c *wakuStoreConfig) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", errOption)
		}
		c.logger = l
		return nil
	}
}

// WithQueryHook calls hook after each query answered, with the status
// code and the entries returned (for metrics). It must be quick and safe
// for concurrent use.
func WithQueryHook(hook func(status uint32, entries int)) WakuStoreOption {
	return func(c *wakuStoreConfig) error {
		if hook == nil {
			return fmt.Errorf("%w: nil query hook", errOption)
		}
		c.hook = hook
		return nil
	}
}
