package node

import (
	"context"
	"fmt"
	"time"

	ds "github.com/ipfs/go-datastore"

	"github.com/storesync/storesync/reconcile"
)

// endBulk ends a bulk load by keeping what it stored: it writes the rest
// of the tree and the scope's record, with the load's own last records
// (end: endImport, endCatchUp), which delete the bulk record; the store
// then keeps the scope (newScope), or the scope's held keys are in its
// tree (emptyScope). It runs whatever ctx says. A failure leaves the bulk
// record for OpenStore, which rebuilds the scope from its records.
func (s *Store) endBulk(ctx context.Context, mode bulkMode, st *scopeState, build *reconcile.Builder, end writeFunc) error {
	ctx = context.WithoutCancel(ctx)
	if err := s.writeNodes(ctx, build, nil); err != nil {
		return err // nodes lost: the bulk record stays
	}
	if mode == emptyScope {
		return s.endHeld(ctx, st, build, end)
	}
	b, err := s.d.Batch(ctx)
	if err != nil {
		return err
	}
	if err := build.Finish(ctx, b); err != nil {
		return err
	}
	rec := scopeRecord{scope: st.scope, agg: build.Root()}
	if err := b.Put(ctx, scopeRecordKey(st.idHex), rec.encode()); err != nil {
		return err
	}
	if err := end(ctx, b); err != nil {
		return err
	}
	if err := b.Commit(ctx); err != nil {
		return err
	}
	if err := s.d.Sync(ctx, rootKey); err != nil {
		return err
	}
	kept, err := openScope(ctx, s.d, rec, s.cfg)
	if err != nil {
		return err
	}
	if kept.tree.Root() != rec.agg {
		return fmt.Errorf("%w: scope %s: the built tree's root differs from its record", ErrCorrupt, st.scope)
	}
	s.addMu.Lock()
	s.mu.Lock()
	s.scopes[st.scope], s.byID[st.id] = kept, kept
	s.mu.Unlock()
	delete(s.bulk, st.scope)
	s.addMu.Unlock()
	return nil
}

// endImport returns the end of a bulk import's own records: the import
// record of the state at (none when at is nil), and the deletion of the
// bulk record.
func endImport(st *scopeState, at []byte) writeFunc {
	return func(ctx context.Context, b ds.Write) error {
		var err error
		if at != nil {
			err = writeImportRecord(st, at)(ctx, b)
		} else {
			err = b.Delete(ctx, importRecordKey(st.idHex))
		}
		if err != nil {
			return err
		}
		return b.Delete(ctx, bulkRecordKey(st.idHex))
	}
}

// endHeld is endBulk for a kept scope. With no flush running and the
// scope's writers held off, it publishes the built tree, then inserts
// the keys commits added meanwhile (held pending) in one commit with the
// scope's record and end, and lets the scope's keys be flushed again.
func (s *Store) endHeld(ctx context.Context, st *scopeState, build *reconcile.Builder, end writeFunc) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	st.wmu.Lock()
	defer st.wmu.Unlock()
	b, err := s.d.Batch(ctx)
	if err != nil {
		return err
	}
	if err := build.Finish(ctx, b); err != nil {
		return err
	}
	if err := b.Commit(ctx); err != nil {
		return err
	}
	if err := build.Commit(); err != nil {
		return err
	}
	// The built tree is published. Held keys it holds too (messages both
	// the file and a commit brought) are pending no more, so that the
	// tree and the pending keys again add up to the scope's sum, whatever
	// happens next; the rest go into the tree in the commit that ends the
	// import, or, if that fails, at the next flush.
	var rest []reconcile.Key
	var hasErr error
	st.pending.each(func(k reconcile.Key) {
		if hasErr != nil {
			return
		}
		var in bool
		if in, hasErr = st.tree.Has(ctx, k); !in {
			rest = append(rest, k)
		}
	})
	if hasErr != nil {
		return hasErr
	}
	both := st.pending.len() - len(rest)
	st.pending.reset()
	for _, k := range rest {
		st.pending.add(k)
	}
	next := *st.snap.Load()
	next.agg = st.tree.Root()
	for i := range rest {
		next.agg = next.agg.AddHash(&rest[i].Hash)
	}
	if last, ok := build.Last(); ok {
		next.newest = max(next.newest, int64(last.TS))
	}
	st.snap.Store(&next)
	s.jmu.Lock()
	s.pendingN -= both
	s.heldN -= both
	s.jmu.Unlock()

	x := st.tree.Begin()
	x.Grow(len(rest))
	for _, k := range rest {
		x.Insert(k)
	}
	if b, err = s.d.Batch(ctx); err == nil {
		err = x.Write(ctx, b)
	}
	rec := scopeRecord{scope: st.scope, agg: next.agg}
	if err == nil && x.Root() != rec.agg {
		err = fmt.Errorf("%w: scope %s: the built tree and the held keys do not add up to the scope's sum", ErrCorrupt, st.scope)
	}
	if err == nil {
		err = b.Put(ctx, scopeRecordKey(st.idHex), rec.encode())
	}
	if err == nil {
		err = end(ctx, b)
	}
	if err == nil {
		err = b.Commit(ctx)
	}
	if err != nil {
		x.Discard()
		return err
	}
	x.Commit()
	st.pending.reset()
	st.bulk = false
	st.loading.Store(0)
	s.jmu.Lock()
	s.pendingN -= len(rest)
	s.heldN -= len(rest)
	delete(s.dirty, st)
	if s.pendingN == 0 {
		s.oldest = time.Time{}
	}
	s.jmu.Unlock()
	return s.d.Sync(ctx, rootKey)
}
