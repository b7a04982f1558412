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
		// Deletions go straight into the tree, which must hold every
		// message first.
		if err := s.flushIfPending(ctx); err != nil {
			return total, fmt.Errorf("delete from scope %s: %w", sc, err)
		}
		// Keys are read before the commit: a commit holds the tree's
		// write lock, under which the tree cannot be read. A concurrent
		// DeleteBefore may remove some of them first; the tree reports
		// which were still there.
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
		n, err := s.commitDeletes(ctx, st, keys)
		if errors.Is(err, errPendingKeys) {
			continue // a commit came in between: flush again
		}
		if err != nil {
			return total, fmt.Errorf("delete from scope %s: %w", sc, err)
		}
		total += n
		if len(keys) < deleteBatch {
			return total, nil
		}
	}
}
