package node

import (
	"context"

	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// protocolStore adapts Store to what the protocol needs, catch-up
// included.
type protocolStore struct{ *Store }

var (
	_ protocol.CatchUpStore = protocolStore{}
	_ protocol.ScopeCounter = protocolStore{}
)

// ScopeCount implements protocol.ScopeCounter from the scope's committed
// state, pending keys included, without flushing them (nor computing the
// fingerprint Stats gives).
func (p protocolStore) ScopeCount(sc reconcile.Scope) (uint64, bool) {
	st, ok := p.state(sc)
	if !ok {
		return 0, false
	}
	return st.snap.Load().agg.Count, true
}

// Put implements protocol.Store.
func (p protocolStore) Put(ctx context.Context, msgs []reconcile.Message) (int, error) {
	res, err := p.Store.Put(ctx, msgs...)
	return len(res.Added), err
}

// Scan implements protocol.CatchUpStore: one sequential read of the
// scope's records over LevelDB.
func (p protocolStore) Scan(ctx context.Context, sc reconcile.Scope, after, until reconcile.Key, fn func(reconcile.Key, []byte) error) error {
	st, err := p.enterScope(sc)
	if err != nil {
		return err
	}
	defer p.calls.Done()
	return p.readRange(ctx, st, after, until, func(k reconcile.Key, raw []byte) error {
		if k == after {
			return nil // after is exclusive
		}
		return fn(k, raw)
	})
}

// PutCatchUp implements protocol.CatchUpStore: the messages and the
// cursors commit in one batch (Store.put).
func (p protocolStore) PutCatchUp(ctx context.Context, sc reconcile.Scope, msgs []reconcile.Message, keys []reconcile.Key, curs ...protocol.Cursor) (int, error) {
	st, ok := p.state(sc)
	if !ok {
		return 0, protocol.ErrUnknownScope
	}
	res, err := p.put(ctx, msgs, keys, writeCursors(st.idHex, curs))
	return len(res.Added), err
}

// Cursors implements protocol.CatchUpStore.
func (p protocolStore) Cursors(ctx context.Context, sc reconcile.Scope) ([]protocol.Cursor, error) {
	st, err := p.enterScope(sc)
	if err != nil {
		return nil, err
	}
	defer p.calls.Done()
	return p.cursors(ctx, st)
}
