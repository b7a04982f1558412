package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"

	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// A bulk import restores a scope the store does not keep, or keeps with
// no message: it writes the message records alone, in key order, and
// builds the tree from their keys as they pass (reconcile.Builder)
// instead of inserting them. It reads the file once, verifying each
// batch before storing it. The scope's tree and record are written
// last, in the commits that end the import.
//
// Nothing else may write the tree meanwhile. A scope not kept stays so
// until the end (Put refuses it, AddScope fails with ErrImportRunning).
// A kept scope takes commits as usual, but flushes leave their keys
// pending (scopeState.bulk): the import's end inserts them into the
// built tree, with the scope's record, under the scope's lock.
//
// Its records are findable by the bulk record it writes first, which
// holds the scope: a file found bad deletes every record the import
// wrote and the bulk record, so that the store is as it was; an import
// cut short (ctx, a failing datastore) keeps what it stored, with the
// import record of the last batch stored, from which an import of the
// same file resumes; and OpenStore, finding a bulk record after a crash,
// rebuilds the scope from its records (repairScope) and keeps it.

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

// bulkMode says how an import stores its file.
type bulkMode int

const (
	// twoPasses: the scope holds messages, and the import verifies the
	// whole file before storing it as Put does.
	twoPasses bulkMode = iota
	// newScope: a bulk import of a scope the store does not keep.
	newScope
	// emptyScope: a bulk import of a kept scope with no message, whose
	// new keys it holds pending until it ends.
	emptyScope
)

// claimBulk decides how an import of sc stores its file, and claims the
// scope for a bulk import: it marks a scope not kept, which AddScope
// then refuses, or sets an empty kept scope's bulk flag. It returns the
// scope's state for a bulk import.
func (s *Store) claimBulk(sc reconcile.Scope) (bulkMode, *scopeState, error) {
	s.addMu.Lock()
	defer s.addMu.Unlock()
	if st, ok := s.state(sc); ok {
		st.wmu.Lock()
		defer st.wmu.Unlock()
		// Pending and flushing keys are in the count.
		if st.snap.Load().agg.Count > 0 || st.tree.Root().Count > 0 {
			return twoPasses, nil, nil
		}
		st.bulk = true
		return emptyScope, st, nil
	}
	s.mu.RLock()
	other, clash := s.byID[sc.ID()]
	s.mu.RUnlock()
	if clash {
		return twoPasses, nil, fmt.Errorf("its ID %x is that of kept scope %s", sc.ID(), other.scope)
	}
	s.bulk[sc] = struct{}{}
	return newScope, newScopeState(sc), nil
}

// releaseBulk undoes what claimBulk did, if the import's end has not:
// a kept scope's held keys go to the next flush.
func (s *Store) releaseBulk(mode bulkMode, st *scopeState) {
	switch mode {
	case newScope:
		s.addMu.Lock()
		delete(s.bulk, st.scope)
		s.addMu.Unlock()
	case emptyScope:
		st.wmu.Lock()
		defer st.wmu.Unlock()
		s.unhold(st)
	}
}

// unhold ends a kept scope's bulk flag: its pending keys are no longer
// held, and the flusher is asked for them. The caller holds st.wmu.
func (s *Store) unhold(st *scopeState) {
	if !st.bulk {
		return
	}
	st.bulk = false
	s.jmu.Lock()
	s.heldN -= st.pending.len()
	s.jmu.Unlock()
	s.kickFlusher()
}

// bulkImport is the import of r's scope, which the store does not keep
// and which claimBulk marked; see the comment at the top of this file.
// r stands after the header.
func (s *Store) bulkImport(ctx context.Context, mode bulkMode, st *scopeState, r *snapshot.Reader, obs snapshotObserver, rep *ImportReport) error {
	h := r.Header()
	tree := st.tree
	if mode == newScope {
		var err error
		if tree, err = s.checkNewScope(ctx, st); err != nil {
			return err
		}
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
			return errors.Join(context.Cause(ctx), s.endBulk(ctx, mode, st, build, last))
		case errors.Is(p.err, io.EOF):
			rep.Batches = p.at.Batches()
			return s.endBulk(ctx, mode, st, build, nil)
		case p.err != nil:
			return errors.Join(fmt.Errorf("verify: %w", p.err), s.dropBulk(ctx, mode, st, rep))
		}
		at, err := p.at.MarshalBinary()
		if err != nil {
			return errors.Join(err, s.endBulk(ctx, mode, st, build, last))
		}
		added, rejected, err := s.storeBulkBatch(ctx, st, build, p.b, at, rep)
		if errors.Is(err, reconcile.ErrNotAscending) {
			// The reader checks the key order; a file that slips past
			// it is bad all the same.
			return errors.Join(fmt.Errorf("verify: %w: %w", snapshot.ErrCorrupt, err), s.dropBulk(ctx, mode, st, rep))
		}
		if err != nil {
			return errors.Join(err, s.endBulk(ctx, mode, st, build, last))
		}
		last = at
		size := p.b.Next - p.b.Offset
		rep.Added += added
		rep.Rejected += rejected
		rep.Bytes += size
		progress(int(p.at.Count()), p.b.Next)
	}
	// The channel closes without an EOF item only when ctx ended.
	return errors.Join(context.Cause(ctx), s.endBulk(ctx, mode, st, build, last))
}

// checkNewScope opens the tree of a scope not kept, which must be empty,
// and checks that the scope has no message record: records of a scope
// not kept are left only by an import whose bulk record OpenStore found,
// so any other is not the store's.
func (s *Store) checkNewScope(ctx context.Context, st *scopeState) (*reconcile.Tree, error) {
	tree, err := reconcile.Open(ctx, s.d, treeKey(st.idHex), s.cfg.treeOpts...)
	if err != nil {
		return nil, err
	}
	if tree.Root().Count != 0 {
		return nil, fmt.Errorf("%w: scope %s has a tree but no record", ErrCorrupt, st.scope)
	}
	res, err := s.d.Query(ctx, dsq.Query{Prefix: msgsKey.ChildString(st.idHex).String(), KeysOnly: true, Limit: 1})
	if err != nil {
		return nil, err
	}
	stray, err := res.Rest()
	if err != nil {
		return nil, err
	}
	if len(stray) > 0 {
		return nil, fmt.Errorf("%w: scope %s has message records but no record (%s)", ErrCorrupt, st.scope, stray[0].Key)
	}
	return tree, nil
}

// storeBulkBatch writes the records of a batch's messages that the store
// accepts (check) in one commit, then adds their keys to the build, so
// that the build holds exactly the keys stored; once it holds
// bulkNodeBytes of nodes, it writes those (writeNodes), the last part
// with the import record of the state at after the batch. Keys not in
// ascending order, after those of the batches before, fail with
// reconcile.ErrNotAscending before anything is written.
func (s *Store) storeBulkBatch(ctx context.Context, st *scopeState, build *reconcile.Builder, b snapshot.Batch, at []byte, rep *ImportReport) (added, rejected int, err error) {
	batch, err := s.d.Batch(ctx)
	if err != nil {
		return 0, 0, err
	}
	w := newRecordWriter(batch, s.cfg.hashIndex)
	prev, have := build.Last()
	keys := make([]reconcile.Key, 0, len(b.Messages))
	for i := range b.Messages {
		m, k := &b.Messages[i], b.Keys[i]
		if err := s.check(m); err != nil {
			if rep.RejectReason == nil {
				rep.RejectReason = err
			}
			rejected++
			continue
		}
		if have && !prev.Less(k) {
			return 0, 0, fmt.Errorf("%w: %v after %v", reconcile.ErrNotAscending, k, prev)
		}
		prev, have = k, true
		if err := w.put(ctx, st.id, st.keys, k, m); err != nil {
			return 0, 0, err
		}
		keys = append(keys, k)
	}
	if err := batch.Commit(ctx); err != nil {
		return 0, 0, err
	}
	for _, k := range keys {
		if err := build.Add(k); err != nil {
			return 0, 0, err // the order was checked: not reached
		}
	}
	if build.Buffered() < bulkNodeBytes {
		return len(keys), rejected, nil
	}
	return len(keys), rejected, s.writeNodes(ctx, build, writeImportRecord(st, at))
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

// endBulk ends a bulk import by keeping what it stored: it writes the
// rest of the tree and the scope's record and, when the import was cut
// short after the batch whose state is at, the import record (else it
// deletes any), and deletes the bulk record; the store then keeps the
// scope (newScope), or the scope's held keys are in its tree
// (emptyScope). It runs whatever ctx says. A failure leaves the bulk
// record for OpenStore, which rebuilds the scope from its records.
func (s *Store) endBulk(ctx context.Context, mode bulkMode, st *scopeState, build *reconcile.Builder, at []byte) error {
	ctx = context.WithoutCancel(ctx)
	if err := s.writeNodes(ctx, build, nil); err != nil {
		return err
	}
	if mode == emptyScope {
		return s.endHeld(ctx, st, build, at)
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
	if err := endRecords(ctx, b, st, at); err != nil {
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

// endRecords writes into b the end of a bulk import's own records: the
// import record of the state at (none when at is nil), and the deletion
// of the bulk record.
func endRecords(ctx context.Context, b ds.Write, st *scopeState, at []byte) error {
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

// endHeld is endBulk for a kept scope. With no flush running and the
// scope's writers held off, it publishes the built tree, then inserts
// the keys commits added meanwhile (held pending) in one commit with the
// scope's record and endRecords, and lets the scope's keys be flushed
// again.
func (s *Store) endHeld(ctx context.Context, st *scopeState, build *reconcile.Builder, at []byte) error {
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
		err = endRecords(ctx, b, st, at)
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
