package protocol

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/storesync/storesync/protocol/internal/lifecycle"
	"github.com/storesync/storesync/reconcile"
)

// StoreQueryID is the Waku Store v3 protocol (WAKU2-STORE): one request
// and one response per stream, varint-delimited.
const StoreQueryID protocol.ID = "/vac/waku/store-query/3.0.0"

// WakuStoreServiceName is the resource manager service of Store v3
// streams.
const WakuStoreServiceName = "storesync.waku-store"

// The status codes of Store v3 responses.
const (
	StatusOK                 = 200
	StatusBadRequest         = 400
	StatusTooManyRequests    = 429
	StatusServiceUnavailable = 503
)

// HistoryQuery is a Store v3 query as a HistoryStore answers it, checked:
// either a content filter (PubsubTopic with ContentTopics, or neither, and
// a time range) or Hashes, never both.
type HistoryQuery struct {
	// PubsubTopic and ContentTopics select the scopes; both empty means
	// every kept scope.
	PubsubTopic   string
	ContentTopics []string
	// Start (inclusive) and End (exclusive) bound the timestamps, in Unix
	// nanoseconds; 0 leaves a side open.
	Start, End int64
	// Hashes asks for these messages alone.
	Hashes []reconcile.Hash
	// Cursor, if set, is the hash of a stored message: the page holds
	// what follows it (Forward) or precedes it, in key order.
	Cursor *reconcile.Hash
	// Forward pages in ascending key order; otherwise the page holds the
	// last matches before the cursor (or the end).
	Forward bool
	// Limit caps the entries; MaxBytes caps the messages' wire size when
	// IncludeData is set, the page then ending early (with one entry at
	// least).
	Limit       int
	MaxBytes    int
	IncludeData bool
}

// HistoryEntry is one match: its hash, and the message if the query
// included data.
type HistoryEntry struct {
	Hash    reconcile.Hash
	Message *reconcile.Message
}

// HistoryPage is the answer to a HistoryQuery.
type HistoryPage struct {
	// Entries are in ascending key order (time, then hash), whichever the
	// direction.
	Entries []HistoryEntry
	// More reports that matches lie beyond the page in its direction.
	More bool
}

// HistoryStore answers Store v3 queries; node's store is one.
type HistoryStore interface {
	History(ctx context.Context, q HistoryQuery) (HistoryPage, error)
}

// ErrUnknownCursor is returned by a HistoryStore for a cursor that names
// no stored message.
var ErrUnknownCursor = errors.New("the cursor names no stored message")

// ErrQueryTooBroad is returned by a HistoryStore for a query over more
// scopes than it serves at once.
var ErrQueryTooBroad = errors.New("the query spans too many scopes: name its pubsub and content topics")

// WakuStore serves Store v3 queries from a HistoryStore. Create it with
// NewWakuStore, stop it with Close.
type WakuStore struct {
	h      host.Host
	store  HistoryStore
	cfg    wakuStoreConfig
	active *limiter
	idle   *idleStreams

	handlers lifecycle.Handlers
	ctx      context.Context
	cancel   context.CancelFunc
}

// NewWakuStore mounts the Store v3 protocol on h, answering from store.
func NewWakuStore(h host.Host, store HistoryStore, opts ...WakuStoreOption) (*WakuStore, error) {
	if h == nil || store == nil {
		return nil, errors.New("protocol: NewWakuStore needs a host and a store")
	}
	cfg := defaultWakuStoreConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("protocol: %w", err)
		}
	}
	w := &WakuStore{h: h, store: store, cfg: cfg,
		active: newLimiter(cfg.activePerPeer, cfg.activeTotal, newRates(cfg.rate, time.Now)),
		idle:   newIdleStreams(cfg.idlePerPeer, cfg.idleTotal)}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	h.SetStreamHandler(StoreQueryID, w.handle)
	return w, nil
}

// Close removes the handler, ends the queries being served and waits for
// them.
func (w *WakuStore) Close() error {
	w.h.RemoveStreamHandler(StoreQueryID)
	w.handlers.Stop()
	w.cancel()
	w.idle.resetAll()
	w.handlers.Wait()
	return nil
}
