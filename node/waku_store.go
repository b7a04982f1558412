package node

import (
	"fmt"

	"github.com/storesync/storesync/protocol"
)

// WithWakuStore serves Waku Store v3 queries (/vac/waku/store-query/3.0.0)
// from the node's store, so that Waku clients such as js-waku read the
// kept scopes: by pubsub and content topics and time, or by message
// hashes, paged both ways with message-hash cursors. It keeps the store's
// hash index (WithHashIndex), which cursors and lookups need; building it
// for a store that has none reads every message record once at start.
func WithWakuStore(opts ...protocol.WakuStoreOption) Option {
	return func(c *config) error {
		c.wakuStore = &opts
		c.storeOpts = append(c.storeOpts, WithHashIndex(true))
		return nil
	}
}

// startWakuStore mounts the Store v3 server if WithWakuStore asked for it.
func (n *Node) startWakuStore(cfg *config) error {
	if cfg.wakuStore == nil {
		return nil
	}
	opts := *cfg.wakuStore
	if cfg.logger != nil {
		opts = append([]protocol.WakuStoreOption{protocol.WithWakuStoreLogger(cfg.logger)}, opts...)
	}
	if n.waku != nil {
		opts = append(opts, protocol.WithQueryHook(n.waku.query))
	}
	ws, err := protocol.NewWakuStore(n.host, n.store, opts...)
	if err != nil {
		return fmt.Errorf("node: store v3: %w", err)
	}
	n.closers = append(n.closers, ws.Close)
	return nil
}
