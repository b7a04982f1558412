package node

import (
	"context"
	"errors"
	"fmt"

	ds "github.com/ipfs/go-datastore"

	"github.com/storesync/storesync/reconcile"
)

// Get returns the stored messages of a scope with the given hashes, in the
// same order, nil where a message is absent. A stored message that does
// not hash to its key, or belongs to another scope, fails the call with
// ErrCorrupt: the store never serves what it cannot vouch for.
func (s *Store) Get(ctx context.Context, sc reconcile.Scope, hashes []reconcile.Hash) ([]*reconcile.Message, error) {
	st, err := s.enterScope(sc)
	if err != nil {
		return nil, err
	}
	defer s.calls.Done()
	out := make([]*reconcile.Message, len(hashes))
	for i, h := range hashes {
		if out[i], err = s.load(ctx, st, h); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Has reports whether a message of a kept scope is stored.
func (s *Store) Has(ctx context.Context, sc reconcile.Scope, h reconcile.Hash) (bool, error) {
	st, err := s.enterScope(sc)
	if err != nil {
		return false, err
	}
	defer s.calls.Done()
	return s.d.Has(ctx, st.keys.hash(h))
}

// load finds a message by hash through the hash index and reads it; it
// returns nil if it is absent.
func (s *Store) load(ctx context.Context, st *scopeState, h reconcile.Hash) (*reconcile.Message, error) {
	b, err := s.d.Get(ctx, st.keys.hash(h))
	if errors.Is(err, ds.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get message %s: %w", h, err)
	}
	ts, err := decodeTS(b)
	if err != nil {
		return nil, err
	}
	k := reconcile.Key{TS: ts, Hash: h}
	b, err = s.d.Get(ctx, st.keys.msg(k))
	if errors.Is(err, ds.ErrNotFound) {
		// Index and message commit together: one without the other is
		// damage, not a race.
		return nil, fmt.Errorf("%w: message %s is indexed but not stored", ErrCorrupt, h)
	}
	if err != nil {
		return nil, fmt.Errorf("get message %s: %w", h, err)
	}
	return decodeStored(st, k, b)
}

// decodeStored decodes a stored message and checks that it is the one
// its record's key names, in the scope it is stored under.
func decodeStored(st *scopeState, k reconcile.Key, b []byte) (*reconcile.Message, error) {
	m := new(reconcile.Message)
	if err := reconcile.UnmarshalMessage(b, m); err != nil {
		return nil, fmt.Errorf("%w: message %s: %w", ErrCorrupt, k.Hash, err)
	}
	if m.Key() != k || m.Scope() != st.scope {
		return nil, fmt.Errorf("%w: message stored as %s in scope %s does not match it", ErrCorrupt, k.Hash, st.scope)
	}
	return m, nil
}
