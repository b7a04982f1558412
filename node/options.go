package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/storesync/storesync/reconcile"
)

// storeConfig holds the options of OpenStore.
type storeConfig struct {
	verify         bool
	hashIndex      bool
	now            func() time.Time
	treeOpts       []reconcile.Option
	maxMessageSize int
	maxClockSkew   time.Duration
	flushAt        int
	flushEvery     time.Duration
}

func defaultStoreConfig() storeConfig {
	return storeConfig{now: time.Now, maxMessageSize: reconcile.DefaultMaxMessageSize,
		maxClockSkew: reconcile.DefaultMaxClockSkew, flushAt: 1 << 13, flushEvery: time.Second}
}

// WithFlush sets when the keys of committed messages go from the journal
// into the trees: a background flush once n are pending, or the oldest
// has waited every. Keys spread over many scopes wait for up to 64 a
// scope, at most 8n: a flush rewrites the open leaf of every scope it
// touches. Commits go on while a flush runs; one that finds 4 times that
// many keys waiting, those being flushed included, flushes itself.
// Whatever reads a tree flushes first, so this bounds only the memory of
// the pending keys (about 100 bytes each, and 300 more while a flush
// inserts them) and the replay after a crash; larger values let more
// commits share the trees' writes, though past a few thousand keys a
// flush writes hardly less per key. Default 8,192 keys and 1 s.
func WithFlush(n int, every time.Duration) StoreOption {
	return func(c *storeConfig) error {
		if n < 1 || every <= 0 {
			return fmt.Errorf("WithFlush: %d keys, %v", n, every)
		}
		c.flushAt, c.flushEvery = n, every
		return nil
	}
}

// MaxClockSkewLimit is the largest maximum clock skew a store accepts.
const MaxClockSkewLimit = 24 * time.Hour

// WithMaxClockSkew bounds how far ahead of the store's clock (WithNow) a
// message's timestamp may be; one further ahead is rejected with
// ErrInvalidMessage wrapping reconcile.ErrTimestampAhead. Default
// reconcile.DefaultMaxClockSkew (20 s, as Waku relays allow); at most
// MaxClockSkewLimit. A node (New, WithStoreOptions) gives its protocol
// the same bound, so that a peer sending such messages earns strikes.
func WithMaxClockSkew(d time.Duration) StoreOption {
	return func(c *storeConfig) error {
		if d <= 0 || d > MaxClockSkewLimit {
			return fmt.Errorf("WithMaxClockSkew: %v, want more than 0 and at most %v", d, MaxClockSkewLimit)
		}
		c.maxClockSkew = d
		return nil
	}
}

// MaxMessageSizeLimit is the largest maximum message size a store
// accepts: every message it can store must fit one transfer batch, whose
// default limit is 1 MiB, with room for the batch's framing.
const MaxMessageSizeLimit = 1<<20 - 64<<10

// WithMaxMessageSize bounds the messages the store accepts, by their
// reconcile.Message.Size; larger ones are rejected with
// ErrInvalidMessage wrapping reconcile.ErrMessageTooLarge. Default
// reconcile.DefaultMaxMessageSize (150 KiB, as Waku relays use); at most
// MaxMessageSizeLimit, so that anything stored can be transferred. A node
// (New, WithStoreOptions) gives its protocol the same bound, so that it
// refuses larger messages from peers too.
func WithMaxMessageSize(n int) StoreOption {
	return func(c *storeConfig) error {
		if n < 1 || n > MaxMessageSizeLimit {
			return fmt.Errorf("WithMaxMessageSize: %d bytes, want 1 to %d", n, MaxMessageSizeLimit)
		}
		c.maxMessageSize = n
		return nil
	}
}

// StoreOption configures OpenStore.
type StoreOption func(*storeConfig) error

// WithVerifyOnOpen makes OpenStore walk every tree (reconcile.Tree.Verify)
// and every stored message key of every scope, and check both against the
// scope's recorded count and sum. It costs O(N) reads, so it suits start-up
// after an unclean shutdown or a check run, not every start. Default false:
// OpenStore then compares only each tree's root with its record, in O(1).
func WithVerifyOnOpen(on bool) StoreOption {
	return func(c *storeConfig) error {
		c.verify = on
		return nil
	}
}

// WithHashIndex keeps an index of the store's messages by hash (what
// Store.Locate reads, and a Waku Store v3 server needs for its cursors
// and lookups). Off by default: the index writes a record per message
// whose key is random, which LevelDB pays for in compactions, so that bulk
// ingest runs at about half the speed with it (storesync-bench -mode
// ingest). Opening a store with the index on builds it from the message
// records if it is not whole (the first time, or after the store was
// opened without it); opening it with the index off deletes it.
func WithHashIndex(on bool) StoreOption {
	return func(c *storeConfig) error {
		c.hashIndex = on
		return nil
	}
}

// WithNow sets the clock that stamps ScopeStats.LastAdded and that
// WithMaxClockSkew measures timestamps against; tests use it to
// fix time. Default time.Now.
func WithNow(now func() time.Time) StoreOption {
	return func(c *storeConfig) error {
		if now == nil {
			return errors.New("WithNow: nil clock")
		}
		c.now = now
		return nil
	}
}

// WithKeyIndex keeps, for every scope, each key of its tree in memory by
// short ID (reconcile.WithKeyIndex): sessions find the keys of the
// differences they decode without reading the leaves that hold them,
// which makes them a third to a half as long and lets them grow less
// with the store, for 40 bytes a message (twice that for a moment while
// the index folds its changes in). Opening the store then reads every
// scope's keys once. Default off.
func WithKeyIndex(on bool) StoreOption {
	return func(c *storeConfig) error {
		if on {
			c.treeOpts = append(c.treeOpts, reconcile.WithKeyIndex())
		}
		return nil
	}
}

// WithTreeCache bounds the node cache of each scope's tree to about
// entries entries (reconcile.WithCacheEntries, which sets the minimum and
// the default: without it the bound grows with the tree). The cache is
// per scope: a node keeping k scopes holds up to k times as many.
func WithTreeCache(entries int) StoreOption {
	return func(c *storeConfig) error {
		if entries <= 0 {
			return fmt.Errorf("WithTreeCache: %d entries", entries)
		}
		c.treeOpts = append(c.treeOpts, reconcile.WithCacheEntries(entries))
		return nil
	}
}
