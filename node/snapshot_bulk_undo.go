package node

import (
	"context"
	"fmt"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"

	"github.com/storesync/storesync/reconcile"
)

// dropBulk undoes a bulk import of a bad file: it deletes the records
// the import wrote (the scope's message records but those of its held
// keys, their hash index entries, the tree's nodes, the import record),
// then the bulk record, and zeroes rep's counts. It runs whatever ctx
// says; a failure leaves the bulk record, and OpenStore keeps what is
// left.
func (s *Store) dropBulk(ctx context.Context, mode bulkMode, st *scopeState, rep *ImportReport) error {
	rep.Added, rep.Rejected, rep.RejectReason, rep.Bytes = 0, 0, nil, 0
	ctx = context.WithoutCancel(ctx)
	defer st.loading.Store(0)
	if mode == emptyScope {
		// Commits wait: the held keys must stay what they are.
		st.wmu.Lock()
		defer st.wmu.Unlock()
		defer s.unhold(st)
	}
	ours := func(k reconcile.Key) bool { return mode == newScope || !st.pending.has(k) }
	msgs := msgsKey.ChildString(st.idHex)
	err := eachKeyBatched(ctx, s.d, msgs, func(b ds.Batch, key string) error {
		k, err := st.keys.parseMsgKey([]byte(key))
		if err != nil || !ours(k) {
			return nil // not the import's
		}
		if s.cfg.hashIndex {
			if err := b.Delete(ctx, indexKey(&k.Hash)); err != nil {
				return err
			}
		}
		return b.Delete(ctx, ds.RawKey(key))
	})
	if err == nil {
		// The tree is empty but for the nodes the build wrote.
		err = deletePrefix(ctx, s.d, treeKey(st.idHex))
	}
	for _, k := range []ds.Key{importRecordKey(st.idHex), bulkRecordKey(st.idHex)} {
		if err == nil {
			err = s.d.Delete(ctx, k)
		}
	}
	if err != nil {
		return fmt.Errorf("undo the import: %w", err)
	}
	return s.d.Sync(ctx, rootKey)
}

// finishBulkLoads keeps, in a store being opened, the scope of every
// bulk record a crash left: it rebuilds the scope's tree and record from
// the messages stored (repairScope) and deletes the bulk record. The
// import record, when the import wrote one, stays for an import of the
// same file to resume from; a catch-up gets its cursor.
func finishBulkLoads(ctx context.Context, d ds.Batching) error {
	var entries []dsq.Entry
	for _, prefix := range []ds.Key{legacyBulksKey, bulksKey} {
		res, err := d.Query(ctx, dsq.Query{Prefix: prefix.String()})
		if err != nil {
			return err
		}
		es, err := res.Rest()
		if err != nil {
			return err
		}
		entries = append(entries, es...)
	}
	for _, e := range entries {
		rec, err := decodeBulkRecord(e.Value)
		if err != nil {
			return fmt.Errorf("%w: bulk record %s: %w", ErrCorrupt, e.Key, err)
		}
		idHex := scopeIDHex(rec.scope.ID())
		if k := ds.RawKey(e.Key); k != bulkRecordKey(idHex) && k != legacyBulksKey.ChildString(idHex) {
			return fmt.Errorf("%w: bulk record %s names scope %s", ErrCorrupt, e.Key, rec.scope)
		}
		if _, err := repairScope(ctx, d, scopeRecord{scope: rec.scope}); err != nil {
			return fmt.Errorf("finish the interrupted load of scope %s: %w", rec.scope, err)
		}
		b, err := d.Batch(ctx)
		if err != nil {
			return err
		}
		if rec.catchUp != nil {
			// The catch-up resumes from the last record it stored.
			cur, err := catchUpCursorAfterCrash(ctx, d, rec)
			if err != nil {
				return fmt.Errorf("finish the interrupted catch-up of scope %s: %w", rec.scope, err)
			}
			if err := endCatchUp(newScopeState(rec.scope), cur)(ctx, b); err != nil {
				return err
			}
		}
		if err := b.Delete(ctx, ds.RawKey(e.Key)); err != nil {
			return err
		}
		if err := b.Commit(ctx); err != nil {
			return err
		}
	}
	if len(entries) > 0 {
		return d.Sync(ctx, rootKey)
	}
	return nil
}
