package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/storesync/storesync/reconcile"
)

// deleteBatch is how many messages DeleteBefore removes per batch: large
// enough to amortise the tree's rebuild, small enough that the scope's
// writers and tree readers are never held up for long.
const deleteBatch = 1000

// errBatchFull ends the key iteration once a batch is full.
var errBatchFull = errors.New("batch full")

// DeleteBefore removes the messages of a kept scope with timestamps below
// ts (retention), in batches of a bounded size, each message together with
// its tree entry and the scope's updated count and sum. It returns how
// many messages it removed; on error, the batches committed before the
// error stay removed and are counted.
func (s *Store) DeleteBefore(ctx context.Context, sc reconcile.Scope, ts int64) (int, error) {
	st, err := s.enterScope(sc)
	if err != nil {
		return 0, err
	}
	defer s.calls.Done()
	if ts <= 1 {
		return 0, nil // no stored message is older than 1
	}
	hi := reconcile.TimeBound(uint64(ts))
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		// Keys are read before the Txn: a Txn holds the tree's write
		// lock, under which the tree cannot be read.
		keys := make([]reconcile.Key, 0, deleteBatch)
		err := st.tree.Iterate(ctx, reconcile.Key{}, hi, func(k reconcile.Key) error {
			keys = append(keys, k)
			if len(keys) == deleteBatch {
				return errBatchFull
			}
			return nil
		})
		if err != nil && !errors.Is(err, errBatchFull) {
			return total, fmt.Errorf("delete from scope %s: %w", sc, err)
		}
		if len(keys) == 0 {
			return total, nil
		}
		n, err := s.deleteKeys(ctx, st, keys)
		total += n
		if err != nil {
			return total, fmt.Errorf("delete from scope %s: %w", sc, err)
		}
		if len(keys) < deleteBatch {
			return total, nil
		}
	}
}

// deleteKeys removes the messages with the given keys in one batch and
// returns how many were still stored.
func (s *Store) deleteKeys(ctx context.Context, st *scopeState, keys []reconcile.Key) (int, error) {
	b, err := s.d.Batch(ctx)
	if err != nil {
		return 0, err
	}
	x := st.tree.Begin()
	committed := false
	defer func() {
		if !committed {
			x.Discard()
		}
	}()

	// A concurrent DeleteBefore may have removed some keys since they
	// were read; the existence checks under the Txn find out which.
	next := *st.snap.Load()
	removed := 0
	for _, k := range keys {
		key := msgKey(st.idHex, k.Hash)
		has, err := s.d.Has(ctx, key)
		if err != nil {
			return 0, err
		}
		// Deleting from the tree even when the message is gone lets a
		// tree entry without its message show up as a count mismatch
		// rather than stay behind for ever.
		x.Delete(k)
		if !has {
			continue
		}
		if err := b.Delete(ctx, key); err != nil {
			return 0, err
		}
		next.agg = next.agg.SubHash(&k.Hash)
		removed++
	}
	if err := x.Write(ctx, b); err != nil {
		return 0, err
	}
	if x.Removed() != removed {
		return 0, fmt.Errorf("%w: tree dropped %d keys for %d stored messages", ErrCorrupt, x.Removed(), removed)
	}
	if removed == 0 {
		return 0, nil // all deleted meanwhile; the Txn wrote nothing
	}
	if err := b.Put(ctx, scopeRecordKey(st.idHex), (&scopeRecord{scope: st.scope, agg: next.agg}).encode()); err != nil {
		return 0, err
	}
	if err := b.Commit(ctx); err != nil {
		return 0, err
	}
	// Only keys below the cut go, so the newest key stays unless none
	// is left.
	if next.agg.Count == 0 {
		next.newest = 0
	}
	st.snap.Store(&next)
	committed = true
	x.Commit()
	return removed, nil
}
