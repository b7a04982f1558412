package node

import (
	"context"
	"errors"
	"fmt"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"

	"github.com/storesync/storesync/reconcile"
)

// rangeReader is the optional ability of a datastore to list the records
// between two keys in key order, from any start, without reading what
// comes before: OpenLevelDB's datastore has it. go-datastore's Query
// cannot start anywhere but at a prefix.
type rangeReader interface {
	// scanRange calls fn for every record with start <= key < limit, in
	// key order (descending if reverse), until fn fails; the slices are
	// valid only during the call.
	scanRange(ctx context.Context, start, limit ds.Key, reverse bool, fn func(k, v []byte) error) error
}

// readRange calls fn for the stored messages of a scope with keys in
// [lo, hi), in key order, with the record's bytes, which are valid only
// during the call. Over a datastore that is a rangeReader it reads the
// records in one sequential pass; over any other it walks the tree and
// reads each record by its key. Either way a message written or deleted
// during the read may or may not be seen.
func (s *Store) readRange(ctx context.Context, st *scopeState, lo, hi reconcile.Key, fn func(k reconcile.Key, raw []byte) error) error {
	return s.readRangeIn(ctx, st, lo, hi, false, fn)
}

// readRangeIn is readRange in descending key order if reverse; over a
// datastore that is not a rangeReader, it then finds each key with one
// descent of the tree.
func (s *Store) readRangeIn(ctx context.Context, st *scopeState, lo, hi reconcile.Key, reverse bool, fn func(k reconcile.Key, raw []byte) error) error {
	if rr, ok := s.d.(rangeReader); ok {
		return scanMsgsIn(ctx, rr, st, lo, hi, reverse, fn)
	}
	// The tree must hold every committed message first.
	if err := s.flushIfPending(ctx); err != nil {
		return err
	}
	record := func(k reconcile.Key) error {
		v, err := s.d.Get(ctx, st.keys.msg(k))
		if errors.Is(err, ds.ErrNotFound) {
			return nil // deleted since the tree was read
		}
		if err != nil {
			return err
		}
		return fn(k, v)
	}
	if !reverse {
		return st.tree.Iterate(ctx, lo, hi, record)
	}
	for {
		k, ok, err := st.tree.Last(ctx, lo, hi)
		if err != nil || !ok {
			return err
		}
		hi = k
		if err := record(k); err != nil {
			return err
		}
	}
}

// scanMsgs calls fn for every message record of st whose key is in
// [lo, hi), in key order, from a datastore that scans key ranges.
func scanMsgs(ctx context.Context, rr rangeReader, st *scopeState, lo, hi reconcile.Key, fn func(k reconcile.Key, raw []byte) error) error {
	return scanMsgsIn(ctx, rr, st, lo, hi, false, fn)
}

// scanMsgsIn is scanMsgs in either order.
func scanMsgsIn(ctx context.Context, rr rangeReader, st *scopeState, lo, hi reconcile.Key, reverse bool, fn func(k reconcile.Key, raw []byte) error) error {
	start, limit := st.keys.msgRange(lo, hi)
	return rr.scanRange(ctx, start, limit, reverse, func(dk, v []byte) error {
		k, err := st.keys.parseMsgKey(dk)
		if err != nil {
			return err
		}
		return fn(k, v)
	})
}

// eachStoredKey calls fn with the key of every message record of st,
// read from the record keys alone by one Query of d, in no promised
// order.
func eachStoredKey(ctx context.Context, d ds.Read, st *scopeState, fn func(reconcile.Key) error) error {
	res, err := d.Query(ctx, dsq.Query{Prefix: st.keys.msgs, KeysOnly: true})
	if err != nil {
		return fmt.Errorf("list messages: %w", err)
	}
	defer res.Close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, ok := res.NextSync()
		if !ok {
			return nil
		}
		if r.Error != nil {
			return fmt.Errorf("list messages: %w", r.Error)
		}
		k, err := st.keys.parseMsgKey([]byte(r.Key))
		if err != nil {
			return err
		}
		if err := fn(k); err != nil {
			return err
		}
	}
}
