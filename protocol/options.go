package protocol

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/reconcile"
)

// Validator may veto a received message after the protocol has checked
// its hash and scope. A message it rejects is dropped and counted against
// the peer that sent it.
type Validator func(ctx context.Context, from peer.ID, m *reconcile.Message) error

// config holds the options of New.
type config struct {
	params             reconcile.Params
	maxSessionsPerPeer int
	maxSessions        int
	maxScopes          int
	maxBatchMessages   int
	maxBatchBytes      int
	sessionTimeout     time.Duration
	ioTimeout          time.Duration
	window, settle     time.Duration
	pullOffered        bool
	maxPulls           int
	maxStrikes         int
	refuseFor          time.Duration
	maxMessageSize     int
	maxClockSkew       time.Duration
	sessionRate        int // streams a peer may start a minute, per kind
	fetchRate          int
	catchUpRate        int
	volumeFactor       float64
	volumeFloor        int
	volumeWindow       time.Duration
	catchUpRatio       float64
	catchUpMinGap      int
	validator          Validator
	authorize          Authorizer
	logger             *slog.Logger
	metrics            MetricsTracer
	now                func() time.Time
}

func defaults() config {
	return config{
		params:             reconcile.DefaultParams(),
		maxSessionsPerPeer: 2,
		maxSessions:        64,
		maxScopes:          1024,
		maxBatchMessages:   1024,
		maxBatchBytes:      1 << 20,
		sessionTimeout:     5 * time.Minute,
		ioTimeout:          30 * time.Second,
		pullOffered:        true,
		maxPulls:           4,
		maxStrikes:         64,
		refuseFor:          10 * time.Minute,
		maxMessageSize:     reconcile.DefaultMaxMessageSize,
		maxClockSkew:       reconcile.DefaultMaxClockSkew,
		sessionRate:        60,
		fetchRate:          1200,
		catchUpRate:        60,
		volumeFactor:       1,
		volumeFloor:        100_000,
		volumeWindow:       10 * time.Minute,
		catchUpRatio:       2,
		catchUpMinGap:      10_000,
		logger:             log,
		now:                time.Now,
	}
}

// Option configures New.
type Option func(*config) error

var errOption = errors.New("protocol option out of range")

// WithMaxFrameSize sets the largest reconciliation frame either side
// sends or accepts. Default 1 MiB; at least 64 KiB.
func WithMaxFrameSize(n int) Option {
	return func(c *config) error {
		if n < 64<<10 || n > 64<<20 {
			return errOption
		}
		c.params.FrameSize = n
		return nil
	}
}

// WithReconcileParams replaces the reconciliation parameters (sketch
// sizing, item and cell limits per message: the "nodes per request").
// Default reconcile.DefaultParams().
func WithReconcileParams(p reconcile.Params) Option {
	return func(c *config) error {
		if err := p.Validate(); err != nil {
			return err
		}
		c.params = p
		return nil
	}
}

// WithSessionLimits bounds the sessions the server runs at once: per peer
// and in total. Fetch streams have limits of the same size of their own.
// Default 2 per peer, 64 in total.
func WithSessionLimits(perPeer, total int) Option {
	return func(c *config) error {
		if perPeer < 1 || total < perPeer {
			return errOption
		}
		c.maxSessionsPerPeer, c.maxSessions = perPeer, total
		return nil
	}
}

// WithMaxScopes bounds the scopes of one session. Default 1024.
func WithMaxScopes(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return errOption
		}
		c.maxScopes = n
		return nil
	}
}

// WithBatchLimits bounds one fetch batch: the hashes a request may name
// and the bytes of messages a response carries. Default 1024 messages,
// 1 MiB. A fetch stream reserves twice the byte limit with the resource
// manager (the response and its decompressed form).
func WithBatchLimits(messages, bytes int) Option {
	return func(c *config) error {
		if messages < 1 || bytes < 64<<10 {
			return errOption
		}
		c.maxBatchMessages, c.maxBatchBytes = messages, bytes
		return nil
	}
}

// batchOverhead is the slack a batch's reader allows above the batch's
// byte limit, for the batch's own framing.
const batchOverhead = 64 << 10

// messageFraming is room enough for what a batch adds around one message.
const messageFraming = 1 << 10

// WithMaxMessageSize bounds the messages the service accepts from peers,
// by reconcile.Message.Size; a larger one is rejected and counted against
// the peer. Default reconcile.DefaultMaxMessageSize (150 KiB). It must
// fit a batch (WithBatchLimits' byte limit, less 1 KiB of framing), so
// that every message a store can hold can be transferred; New fails
// otherwise. A node sets it to its store's maximum.
func WithMaxMessageSize(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return errOption
		}
		c.maxMessageSize = n
		return nil
	}
}

// WithMaxClockSkew bounds how far ahead of the service's clock (WithNow)
// the timestamp of a message received from a peer may be; a message
// further ahead is rejected and counted against the peer. Default
// reconcile.DefaultMaxClockSkew (20 s). A node sets it to its store's.
func WithMaxClockSkew(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return errOption
		}
		c.maxClockSkew = d
		return nil
	}
}

// WithCatchUp sets when a client streams a scope (/storesync/catchup)
// instead of reconciling it: when it holds nothing there and the peer
// holds something, or when the peer holds at least ratio times as many
// messages as it does and at least minGap more. Streaming costs the
// peer's whole range, in key order, at the speed of storage; reconciling
// a range that is mostly missing costs a round trip per level and a
// fetch by hash per message. A ratio of 0 turns streaming off: every
// scope is reconciled. Default 2 and 10,000.
func WithCatchUp(ratio float64, minGap int) Option {
	return func(c *config) error {
		if ratio < 0 || (ratio > 0 && ratio < 1) || minGap < 0 {
			return errOption
		}
		c.catchUpRatio, c.catchUpMinGap = ratio, minGap
		return nil
	}
}

// farBehind reports whether a client holding mine of a scope should
// stream it from a peer holding theirs.
func (c *config) farBehind(mine, theirs uint64) bool {
	switch {
	case c.catchUpRatio == 0 || theirs == 0:
		return false
	case mine == 0:
		return true
	}
	return float64(theirs) >= c.catchUpRatio*float64(mine) && theirs-min(theirs, mine) >= uint64(c.catchUpMinGap)
}

// WithTimeouts sets the longest a whole session may take and the longest
// any one read or write may wait. Default 5 minutes and 30 seconds.
func WithTimeouts(session, io time.Duration) Option {
	return func(c *config) error {
		if session <= 0 || io <= 0 {
			return errOption
		}
		c.sessionTimeout, c.ioTimeout = session, io
		return nil
	}
}

// WithWindow bounds client sessions to messages with timestamps in
// [now-window, now-settle]: old messages that retention removes anyway,
// and recent ones still in flight, stay out of the comparison. Zero
// window means from the beginning, zero settle up to now and beyond.
// Default: everything.
func WithWindow(window, settle time.Duration) Option {
	return func(c *config) error {
		if window < 0 || settle < 0 || (window > 0 && settle >= window) {
			return errOption
		}
		c.window, c.settle = window, settle
		return nil
	}
}

// WithPullOffered says whether the server pulls the messages a client
// turns out to hold and the server lacks, at the end of a session. Sync
// is pulled, never pushed: this is the server's decision. Default true.
func WithPullOffered(pull bool) Option {
	return func(c *config) error {
		c.pullOffered = pull
		return nil
	}
}

// WithRates bounds how many sync sessions, fetch streams and catch-up
// streams one peer may start a minute (0: no bound for that kind), each
// a token bucket holding a minute's worth; all peers together may start
// sixteen times as many. A stream over the rate is refused with BUSY, as
// one over the session limits is. Default 60 sessions, 1,200 fetches
// (1.2 million keys) and 60 catch-up streams a minute per peer: several
// times what gossip and a catch-up ask of a peer, while a peer that
// opens sessions in a loop, each of which may read the whole scope, gets
// one a second.
func WithRates(sessions, fetches, catchUps int) Option {
	return func(c *config) error {
		if sessions < 0 || fetches < 0 || catchUps < 0 {
			return errOption
		}
		c.sessionRate, c.fetchRate, c.catchUpRate = sessions, fetches, catchUps
		return nil
	}
}

// WithCatchUpVolume bounds how much of a scope one peer may be sent, by
// catch-up and fetch together: a catch-up stream or a fetch request is
// served only while the messages of the scope sent to the peer, decaying
// with time constant window, number fewer than factor times the scope's
// count plus floor. An honest peer streams a scope about once and
// fetches what its sessions find missing, and the floor leaves room for
// the batches a client that fails to store them has sent again; one
// that downloads the scope again and again would take the server from
// everyone else. Default factor 1, floor 100,000, window 10 minutes;
// factor 0 lifts the bound.
func WithCatchUpVolume(factor float64, floor int, window time.Duration) Option {
	return func(c *config) error {
		if factor < 0 || math.IsNaN(factor) || math.IsInf(factor, 0) || floor < 0 || window <= 0 {
			return errOption
		}
		c.volumeFactor, c.volumeFloor, c.volumeWindow = factor, floor, window
		return nil
	}
}

// WithStrikes sets how many bad messages (wrong hash, wrong scope, vetoed)
// a peer may send before the service refuses it, and for how long.
// Default 64 strikes, 10 minutes.
func WithStrikes(max int, refuseFor time.Duration) Option {
	return func(c *config) error {
		if max < 1 || refuseFor <= 0 {
			return errOption
		}
		c.maxStrikes, c.refuseFor = max, refuseFor
		return nil
	}
}

// WithValidator sets an application validator for received messages.
// Default none.
func WithValidator(v Validator) Option {
	return func(c *config) error {
		c.validator = v
		return nil
	}
}

// Authorizer decides whether a peer may sync a scope with us. A scope it
// refuses is answered with ErrRefused, in sessions and fetches alike.
type Authorizer func(p peer.ID, sc reconcile.Scope) bool

// WithAuthorizer restricts who may sync which scope (private sync
// groups). Default: every peer may sync every kept scope.
func WithAuthorizer(a Authorizer) Option {
	return func(c *config) error {
		c.authorize = a
		return nil
	}
}

// allowed reports whether p may sync sc.
func (c *config) allowed(p peer.ID, sc reconcile.Scope) bool {
	return c.authorize == nil || c.authorize(p, sc)
}

// WithLogger replaces the service's logger. Default the
// "storesync/protocol" subsystem logger, which GOLOG_LOG_LEVEL controls.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errOption
		}
		c.logger = l
		return nil
	}
}

// WithMetricsTracer sets where the service reports metrics. Default none.
func WithMetricsTracer(m MetricsTracer) Option {
	return func(c *config) error {
		c.metrics = m
		return nil
	}
}

// WithNow replaces the clock, for tests. Default time.Now.
func WithNow(now func() time.Time) Option {
	return func(c *config) error {
		c.now = now
		return nil
	}
}
