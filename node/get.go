package node

import (
	"context"
	"errors"
	"fmt"

	ds "github.com/ipfs/go-datastore"

	"github.com/storesync/storesync/reconcile"
)

// Get returns the stored messages of a scope with the given keys, in the
// same order, nil where a message is absent. Each is one read of its
// record. A stored message that does not hash to its key, or belongs to
// another scope, fails the call with ErrCorrupt: the store never serves
// what it cannot vouch for.
func (s *Store) Get(ctx context.Context, sc reconcile.Scope, keys []reconcile.Key) ([]*reconcile.Message, error) {
	st, err := s.enterScope(sc)
	if err != nil {
		return nil, err
	}
	defer s.calls.Done()
	out := make([]*reconcile.Message, len(keys))
	for i, k := range keys {
		if out[i], err = s.load(ctx, st, k); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Has reports whether the message with a key is stored in a kept scope.
func (s *Store) Has(ctx context.Context, sc reconcile.Scope, k reconcile.Key) (bool, error) {
	st, err := s.enterScope(sc)
	if err != nil {
		return false, err
	}
	defer s.calls.Done()
	return s.d.Has(ctx, st.keys.msg(k))
}

// load reads and checks one message; it returns nil if it is absent.
func (s *Store) load(ctx context.Context, st *scopeState, k reconcile.Key) (*reconcile.Message, error) {
	b, err := s.d.Get(ctx, st.keys.msg(k))
	if errors.Is(err, ds.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get message %s: %w", k.Hash, err)
	}
	return decodeStored(st, k, b)
}

// decodeStored decodes a stored message and checks that it is the one
// its record's key names, in the scope it is stored under.
func decodeStored(st *scopeState, k reconcile.Key, b []byte) (*reconcile.Message, error) {
	m := new(reconcile.Message)
	if err := unmarshalStored(k, b, m); err != nil {
		return nil, err
	}
	if err := checkStored(st, k, m); err != nil {
		return nil, err
	}
	return m, nil
}

// unmarshalStored is the first half of decodeStored: it decodes b, the
// record stored under k, into m, copying what it keeps of b.
func unmarshalStored(k reconcile.Key, b []byte, m *reconcile.Message) error {
	if err := reconcile.UnmarshalMessage(b, m); err != nil {
		return fmt.Errorf("%w: message %s: %w", ErrCorrupt, k.Hash, err)
	}
	return nil
}

// checkStored is the second half of decodeStored: it checks that m,
// decoded from the record stored under k, is the message k names (its
// hash recomputed) and of the scope it is stored under.
func checkStored(st *scopeState, k reconcile.Key, m *reconcile.Message) error {
	if m.Key() != k || m.Scope() != st.scope {
		return fmt.Errorf("%w: message stored as %s in scope %s does not match it", ErrCorrupt, k.Hash, st.scope)
	}
	return nil
}
