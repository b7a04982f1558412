package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/storesync/storesync/reconcile"
)

// storeConfig holds the options of OpenStore.
type storeConfig struct {
	verify   bool
	now      func() time.Time
	treeOpts []reconcile.Option
}

func defaultStoreConfig() storeConfig {
	return storeConfig{now: time.Now}
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

// WithNow sets the clock that stamps ScopeStats.LastAdded; tests use it to
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

// WithTreeCache bounds the node cache of each scope's tree to about
// entries entries (reconcile.WithCacheEntries, which sets the minimum and
// the default). The cache is per scope: a node keeping k scopes holds up
// to k times as many.
func WithTreeCache(entries int) StoreOption {
	return func(c *storeConfig) error {
		if entries <= 0 {
			return fmt.Errorf("WithTreeCache: %d entries", entries)
		}
		c.treeOpts = append(c.treeOpts, reconcile.WithCacheEntries(entries))
		return nil
	}
}
