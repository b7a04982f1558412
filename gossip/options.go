package gossip

import (
	"errors"
	"log/slog"
	"time"
)

// config holds the options of New. Defaults are in defaults.
type config struct {
	interval        time.Duration
	jitter          float64
	spread          time.Duration
	maxSessions     int
	backoffBase     time.Duration
	backoffMax      time.Duration
	notSpeakerFor   time.Duration
	startupPeers    int
	startupDelay    time.Duration
	idle            time.Duration
	recentMax       int
	recentDelay     time.Duration
	catchUpFrom     uint64
	maxAnnouncement int
	logger          *slog.Logger
	metrics         MetricsTracer
	now             func() time.Time
	rand            func() float64
}

func defaults() config {
	return config{
		interval:      30 * time.Second,
		jitter:        0.3,
		maxSessions:   2,
		backoffBase:   5 * time.Second,
		backoffMax:    10 * time.Minute,
		notSpeakerFor: time.Hour,
		startupPeers:  3,
		startupDelay:  2 * time.Second,
		recentMax:     0,
		recentDelay:   time.Second,
		catchUpFrom:   10_000,
		// recentMax is 0: recent announcements are off unless asked for.
		maxAnnouncement: 64 << 10,
		logger:          log,
		now:             time.Now,
	}
}

// Option configures New.
type Option func(*config) error

var errOption = errors.New("gossip option out of range")

// WithCatchUpFrom sets when a member that holds nothing of a scope
// streams it from several members at once (Syncer.CatchUp) rather than
// syncing with one: when the member it pulls from announced at least n
// messages there. Below that a session with one member is as cheap.
// Default 10,000; 0 means always.
func WithCatchUpFrom(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return errOption
		}
		c.catchUpFrom = uint64(n)
		return nil
	}
}

// WithInterval sets how often each member announces its roots, and the
// jitter around it (a fraction, default ±30%). Default 30 s. Pulls
// triggered by an announcement wait a random delay up to a quarter of
// the interval, so that the members behind do not all ask the same
// announcer at once.
func WithInterval(d time.Duration, jitter float64) Option {
	return func(c *config) error {
		if d <= 0 || jitter < 0 || jitter >= 1 {
			return errOption
		}
		c.interval, c.jitter = d, jitter
		return nil
	}
}

// WithMaxSessions bounds the sync sessions gossip runs at once. Default 2.
func WithMaxSessions(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return errOption
		}
		c.maxSessions = n
		return nil
	}
}

// WithBackoff sets the backoff after a failed session with a peer: base,
// doubling per consecutive failure up to max. Default a sixth of the
// interval (5 s at 30 s) up to 20 intervals.
func WithBackoff(base, max time.Duration) Option {
	return func(c *config) error {
		if base <= 0 || max < base {
			return errOption
		}
		c.backoffBase, c.backoffMax = base, max
		return nil
	}
}

// WithStartup sets how many members a node syncs with after it joins a
// group, and how long it waits for the topic's peers first. Default 3
// members after 2 s; 0 members turns it off.
func WithStartup(peers int, delay time.Duration) Option {
	return func(c *config) error {
		if peers < 0 || delay < 0 {
			return errOption
		}
		c.startupPeers, c.startupDelay = peers, delay
		return nil
	}
}

// WithIdleSync syncs a scope with a random member when no message has
// arrived in it and no sync has touched it for d. Default off.
func WithIdleSync(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return errOption
		}
		c.idle = d
		return nil
	}
}

// WithRecent announces messages stored through the node's API by hash,
// at most n hashes an announcement and at most one such announcement per
// delay, so that members fetch them before the next interval. Every
// member that lacks one fetches it, so it costs a session per member and
// announcement: worth it where messages must spread fast and the relay
// network does not carry them. Default off; n = 0 turns it off.
func WithRecent(n int, delay time.Duration) Option {
	return func(c *config) error {
		if n < 0 || n > MaxRecent || delay <= 0 {
			return errOption
		}
		c.recentMax, c.recentDelay = n, delay
		return nil
	}
}

// WithLogger replaces the logger. Default the "storesync/gossip"
// subsystem logger, which GOLOG_LOG_LEVEL controls.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errOption
		}
		c.logger = l
		return nil
	}
}

// WithMetricsTracer sets where gossip reports metrics. Default none.
func WithMetricsTracer(m MetricsTracer) Option {
	return func(c *config) error {
		c.metrics = m
		return nil
	}
}

// WithClock replaces the clock and the source of randomness, for tests.
func WithClock(now func() time.Time, rand func() float64) Option {
	return func(c *config) error {
		c.now, c.rand = now, rand
		return nil
	}
}
