package node

import (
	"context"
	"errors"

	ds "github.com/ipfs/go-datastore"

	"github.com/storesync/storesync/reconcile"
)

// rangeReader is the optional ability of a datastore to list the records
// between two keys in key order, from any start, without reading what
// comes before: OpenLevelDB's datastore has it. go-datastore's Query
// cannot start anywhere but at a prefix.
type rangeReader interface {
	// scanRange calls fn for every record with start <= key < limit, in
	// key order, until fn fails; the slices are valid only during the
	// call.
	scanRange(ctx context.Context, start, limit ds.Key, fn func(k, v []byte) error) error
}

// readRange calls fn for the stored messages of a scope with keys in
// [lo, hi), in key order, with the record's bytes, which are valid only
// during the call. Over a datastore that is a rangeReader it reads the
// records in one sequential pass; over any other it walks the tree and
// reads each record by its key. Either way a message written or deleted
// during the read may or may not be seen.
func (s *Store) readRange(ctx context.Context, st *scopeState, lo, hi reconcile.Key, fn func(k reconcile.Key, raw []byte) error) error {
	if rr, ok := s.d.(rangeReader); ok {
		start, limit := st.keys.msgRange(lo, hi)
		return rr.scanRange(ctx, start, limit, func(dk, v []byte) error {
			k, err := st.keys.parseMsgKey(dk)
			if err != nil {
				return err
			}
			return fn(k, v)
		})
	}
	// The tree must hold every committed message first.
	if err := s.flushIfPending(ctx); err != nil {
		return err
	}
	return st.tree.Iterate(ctx, lo, hi, func(k reconcile.Key) error {
		v, err := s.d.Get(ctx, st.keys.msg(k))
		if errors.Is(err, ds.ErrNotFound) {
			return nil // deleted since the tree was read
		}
		if err != nil {
			return err
		}
		return fn(k, v)
	})
}
