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
// same file to resume from.
func finishBulkLoads(ctx context.Context, d ds.Batching) error {
	res, err := d.Query(ctx, dsq.Query{Prefix: bulksKey.String()})
	if err != nil {
		return err
	}
	entries, err := res.Rest()
	if err != nil {
		return err
	}
	for _, e := range entries {
		rec, err := decodeScopeRecord(e.Value)
		if err != nil {
			return fmt.Errorf("%w: bulk record %s: %w", ErrCorrupt, e.Key, err)
		}
		if ds.RawKey(e.Key) != bulkRecordKey(scopeIDHex(rec.scope.ID())) {
			return fmt.Errorf("%w: bulk record %s names scope %s", ErrCorrupt, e.Key, rec.scope)
		}
		if _, err := repairScope(ctx, d, rec); err != nil {
			return fmt.Errorf("finish the interrupted import of scope %s: %w", rec.scope, err)
		}
		if err := d.Delete(ctx, ds.RawKey(e.Key)); err != nil {
			return err
		}
	}
	if len(entries) > 0 {
		return d.Sync(ctx, rootKey)
	}
	return nil
}
