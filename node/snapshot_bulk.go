package node

import (
	"context"
	"errors"
	"fmt"
	"io"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"

	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// A bulk import restores a scope the store does not keep: nothing else
// writes the scope meanwhile (Put refuses it, AddScope fails with
// ErrImportRunning), so the import writes the message records alone, in
// key order, and builds the tree from their keys as they pass
// (reconcile.Builder) instead of inserting them. It reads the file once,
// verifying each batch before storing it; the scope's record, which
// makes the store keep the scope, is written last, with the tree's root,
// in the commit that ends the import.
//
// Its records are findable by the bulk record it writes first, which
// holds the scope: a file found bad deletes every record of the scope
// and the bulk record, so that the store is as it was; an import cut
// short (ctx, a failing datastore) keeps what it stored, as a kept scope
// with the import record of the last batch stored, from which an import
// of the same file resumes; and OpenStore, finding a bulk record after a
// crash, rebuilds the scope from its records (repairScope) and keeps it.

// bulksKey holds the bulk records, by scope ID: each an encoded
// scopeRecord of the scope, with no aggregate.
var bulksKey = rootKey.ChildString("bulk")

// bulkRecordKey returns the key of a scope's bulk record.
func bulkRecordKey(idHex string) ds.Key { return bulksKey.ChildString(idHex) }

// bulkNodeBytes is how many bytes of tree nodes a bulk import holds
// before writing them, with the import record of the state after the
// batch that completed them; a million messages build about 45 MB of
// nodes. A node record is outside the run of new message records, and a
// LevelDB table that holds both overlaps every later table of records,
// which then cannot go down a level untouched (a trivial move) but are
// compacted (the README's ingest section): written at the end, the
// nodes of a million messages cost no compaction of records, and written
// every MiB they cost a third of a second of it.
const bulkNodeBytes = 64 << 20

// bulkWriteBytes is the most a batch of a bulk import's tree nodes
// holds: goleveldb takes one batch of tens of megabytes far slower than
// many small ones (45 MB at once took 1.2 s, in parts of 1 MiB nothing
// measurable).
const bulkWriteBytes = 1 << 20

// claimBulk marks sc as being bulk-imported unless the store keeps it,
// and reports whether it did. AddScope refuses a marked scope.
func (s *Store) claimBulk(sc reconcile.Scope) (bool, error) {
	s.addMu.Lock()
	defer s.addMu.Unlock()
	if _, ok := s.state(sc); ok {
		return false, nil
	}
	s.mu.RLock()
	other, clash := s.byID[sc.ID()]
	s.mu.RUnlock()
	if clash {
		return false, fmt.Errorf("its ID %x is that of kept scope %s", sc.ID(), other.scope)
	}
	s.bulk[sc] = struct{}{}
	return true, nil
}

// releaseBulk removes the mark claimBulk set.
func (s *Store) releaseBulk(sc reconcile.Scope) {
	s.addMu.Lock()
	delete(s.bulk, sc)
	s.addMu.Unlock()
}

// bulkImport is the import of r's scope, which the store does not keep
// and which claimBulk marked; see the comment at the top of this file.
// r stands after the header.
func (s *Store) bulkImport(ctx context.Context, r *snapshot.Reader, obs snapshotObserver, rep *ImportReport) error {
	h := r.Header()
	st := newScopeState(h.Scope)
	tree, err := reconcile.Open(ctx, s.d, treeKey(st.idHex), s.cfg.treeOpts...)
	if err != nil {
		return err
	}
	if tree.Root().Count != 0 {
		return fmt.Errorf("%w: scope %s has a tree but no record", ErrCorrupt, h.Scope)
	}
	// Message records of a scope not kept are left only by an import
	// whose bulk record OpenStore found; any other is not the store's.
	res, err := s.d.Query(ctx, dsq.Query{Prefix: msgsKey.ChildString(st.idHex).String(), KeysOnly: true, Limit: 1})
	if err != nil {
		return err
	}
	stray, err := res.Rest()
	if err != nil {
		return err
	}
	if len(stray) > 0 {
		return fmt.Errorf("%w: scope %s has message records but no record (%s)", ErrCorrupt, h.Scope, stray[0].Key)
	}
	build, err := tree.Build()
	if err != nil {
		return err
	}
	key := bulkRecordKey(st.idHex)
	if err := s.d.Put(ctx, key, (&scopeRecord{scope: h.Scope}).encode()); err != nil {
		return err
	}
	if err := s.d.Sync(ctx, key); err != nil {
		return err
	}
	progress := func(done int, offset int64) {
		protocol.ReportProgress(ctx, protocol.Progress{Kind: protocol.ProgressImport, Scope: h.Scope,
			Done: done, Total: int(h.Count), Bytes: offset})
	}
	progress(0, r.State().Offset())
	var last []byte // the state after the last batch stored
	// The metrics count what the import keeps, once it is kept.
	defer func() {
		if obs != nil && rep.Added+rep.Rejected > 0 {
			obs.imported(h.Scope, rep.Added, 0, rep.Rejected, rep.Bytes)
		}
	}()
	batches, stop := prefetch(ctx, r, prefetchDepth)
	defer stop()
	for p := range batches {
		switch {
		case ctx.Err() != nil:
			return errors.Join(context.Cause(ctx), s.endBulk(ctx, st, build, last))
		case errors.Is(p.err, io.EOF):
			rep.Batches = p.at.Batches()
			return s.endBulk(ctx, st, build, nil)
		case p.err != nil:
			return errors.Join(fmt.Errorf("verify: %w", p.err), s.dropBulk(ctx, st, rep))
		}
		at, err := p.at.MarshalBinary()
		if err != nil {
			return errors.Join(err, s.endBulk(ctx, st, build, last))
		}
		added, rejected, err := s.storeBulkBatch(ctx, st, build, p.b, at, rep)
		if errors.Is(err, reconcile.ErrNotAscending) {
			// The reader checks the key order; a file that slips past
			// it is bad all the same.
			return errors.Join(fmt.Errorf("verify: %w: %w", snapshot.ErrCorrupt, err), s.dropBulk(ctx, st, rep))
		}
		if err != nil {
			// The build may hold keys the failed commit did not store:
			// the tree is built again from the records.
			return errors.Join(err, s.endBulk(ctx, st, nil, last))
		}
		last = at
		size := p.b.Next - p.b.Offset
		rep.Added += added
		rep.Rejected += rejected
		rep.Bytes += size
		progress(int(p.at.Count()), p.b.Next)
	}
	// The channel closes without an EOF item only when ctx ended.
	return errors.Join(context.Cause(ctx), s.endBulk(ctx, st, build, last))
}

// storeBulkBatch writes the records of a batch's messages that the store
// accepts (check) in one commit and adds their keys to the build; once
// the build holds bulkNodeBytes of nodes, it writes those after the
// commit (writeNodes), the last part with the import record of the state
// at after the batch.
func (s *Store) storeBulkBatch(ctx context.Context, st *scopeState, build *reconcile.Builder, b snapshot.Batch, at []byte, rep *ImportReport) (added, rejected int, err error) {
	batch, err := s.d.Batch(ctx)
	if err != nil {
		return 0, 0, err
	}
	w := newRecordWriter(batch, s.cfg.hashIndex)
	for i := range b.Messages {
		m, k := &b.Messages[i], b.Keys[i]
		if err := s.check(m); err != nil {
			if rep.RejectReason == nil {
				rep.RejectReason = err
			}
			rejected++
			continue
		}
		if err := build.Add(k); err != nil {
			return 0, 0, err
		}
		if err := w.put(ctx, st.id, st.keys, k, m); err != nil {
			return 0, 0, err
		}
		added++
	}
	if build.Buffered() < bulkNodeBytes {
		return added, rejected, batch.Commit(ctx)
	}
	if err := batch.Commit(ctx); err != nil {
		return 0, 0, err
	}
	return added, rejected, s.writeNodes(ctx, build, writeImportRecord(st, at))
}

// writeNodes writes the closed nodes of a build in batches of at most
// bulkWriteBytes, the last with what last writes.
func (s *Store) writeNodes(ctx context.Context, build *reconcile.Builder, last writeFunc) error {
	for {
		b, err := s.d.Batch(ctx)
		if err != nil {
			return err
		}
		if err := build.WriteClosedUpTo(ctx, b, bulkWriteBytes); err != nil {
			return err
		}
		if build.Buffered() == 0 && last != nil {
			if err := last(ctx, b); err != nil {
				return err
			}
		}
		if err := b.Commit(ctx); err != nil {
			return err
		}
		if build.Buffered() == 0 {
			return nil
		}
	}
}

// endBulk ends a bulk import by keeping what it stored: in one commit it
// writes the rest of the tree, the scope's record and, when the import
// was cut short after the batch whose state is at, the import record
// (else it deletes any), and deletes the bulk record; then the store
// keeps the scope. Without a build (one a failed commit left ahead of
// the records) it rebuilds the tree and the record from the records
// first (repairScope). It runs whatever ctx says: a failure leaves the
// bulk record for OpenStore.
func (s *Store) endBulk(ctx context.Context, st *scopeState, build *reconcile.Builder, at []byte) error {
	ctx = context.WithoutCancel(ctx)
	rec := scopeRecord{scope: st.scope}
	if build == nil {
		if _, err := repairScope(ctx, s.d, rec); err != nil {
			return err
		}
	}
	if build != nil {
		if err := s.writeNodes(ctx, build, nil); err != nil {
			return err
		}
	}
	b, err := s.d.Batch(ctx)
	if err != nil {
		return err
	}
	if build != nil {
		if err := build.Finish(ctx, b); err != nil {
			return err
		}
		rec.agg = build.Root()
		if err := b.Put(ctx, scopeRecordKey(st.idHex), rec.encode()); err != nil {
			return err
		}
	}
	if at != nil {
		err = writeImportRecord(st, at)(ctx, b)
	} else {
		err = b.Delete(ctx, importRecordKey(st.idHex))
	}
	if err != nil {
		return err
	}
	if err := b.Delete(ctx, bulkRecordKey(st.idHex)); err != nil {
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
	if build == nil {
		// repairScope recorded the rebuilt tree's root.
		rec.agg = kept.tree.Root()
		kept.snap.Store(&scopeSnap{agg: rec.agg, newest: kept.snap.Load().newest})
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

// dropBulk undoes a bulk import of a bad file: it deletes every record
// of the scope (messages, their hash index entries, tree nodes, import
// record), then the bulk record, and zeroes rep's counts. It runs
// whatever ctx says; a failure leaves the bulk record, and OpenStore
// keeps what is left.
func (s *Store) dropBulk(ctx context.Context, st *scopeState, rep *ImportReport) error {
	rep.Added, rep.Rejected, rep.RejectReason, rep.Bytes = 0, 0, nil, 0
	ctx = context.WithoutCancel(ctx)
	msgs := msgsKey.ChildString(st.idHex)
	if s.cfg.hashIndex {
		if err := deleteIndexEntries(ctx, s.d, st, msgs); err != nil {
			return fmt.Errorf("undo the import: %w", err)
		}
	}
	for _, prefix := range []ds.Key{msgs, treeKey(st.idHex)} {
		if err := deletePrefix(ctx, s.d, prefix); err != nil {
			return fmt.Errorf("undo the import: %w", err)
		}
	}
	for _, k := range []ds.Key{importRecordKey(st.idHex), bulkRecordKey(st.idHex)} {
		if err := s.d.Delete(ctx, k); err != nil {
			return fmt.Errorf("undo the import: %w", err)
		}
	}
	return s.d.Sync(ctx, rootKey)
}

// deleteIndexEntries deletes the hash index entries of the message
// records under prefix, those of st.
func deleteIndexEntries(ctx context.Context, d ds.Batching, st *scopeState, prefix ds.Key) error {
	return eachKeyBatched(ctx, d, prefix, func(b ds.Batch, key string) error {
		k, err := st.keys.parseMsgKey([]byte(key))
		if err != nil {
			return nil // not a message record; deletePrefix takes it
		}
		return b.Delete(ctx, indexKey(&k.Hash))
	})
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
