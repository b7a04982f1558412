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

// bulksKey holds the bulk records, by scope ID (bulkRecord).
var bulksKey = resumeKey.ChildString("bulk")

// legacyBulksKey held the bulk records of imports before they moved after
// the messages; OpenStore finishes those too.
var legacyBulksKey = rootKey.ChildString("bulk")

// bulkRecordKey returns the key of a scope's bulk record.
func bulkRecordKey(idHex string) ds.Key { return bulksKey.ChildString(idHex) }

// beginBulk writes the bulk record of a load of st (writeBulkRecord) and
// settles the records after the messages (settle), so that the load's
// run of message records fills tables of its own, which LevelDB moves
// down its levels without compacting them.
func (s *Store) beginBulk(ctx context.Context, st *scopeState, rec *bulkRecord) error {
	if err := s.writeBulkRecord(ctx, st, rec); err != nil {
		return err
	}
	return s.settleAfterMessages()
}

// settleAfterMessages settles the records that sort after the messages
// but before the trees (journal, resume and scope records, the fsync
// record) before a bulk load's first batch.
func (s *Store) settleAfterMessages() error { return settle(s.d, journalKey, treesKey) }

// writeBulkRecord writes and syncs the bulk record of a load of st.
func (s *Store) writeBulkRecord(ctx context.Context, st *scopeState, rec *bulkRecord) error {
	key := bulkRecordKey(st.idHex)
	if err := s.d.Put(ctx, key, rec.encode()); err != nil {
		return err
	}
	return s.d.Sync(ctx, key)
}

// bulkNodeBytes is how many bytes of tree nodes a bulk import holds
// before writing them, with the import record of the state after the
// batch that completed them; a million messages build about 45 MB of
// nodes. A node record is outside the run of new message records, and a
// LevelDB table that holds both overlaps every later table of records,
// which then cannot go down a level untouched (a trivial move) but are
// compacted (the README's ingest section): written at the end, the
// nodes of a million messages cost no compaction of records, and written
// every MiB they cost a third of a second of it.
//
// A variable only so that tests can make a small import write its nodes
// in mid-load.
var bulkNodeBytes = 64 << 20

// bulkNodeBytesApart is bulkNodeBytes over a datastore that keeps the
// message records apart from every other record (splitStore): nodes
// written in mid-load cost the records nothing there, and a receiver
// holding 4 MiB of them rather than 45 MB at a million messages peaks
// tens of MiB lower.
const bulkNodeBytesApart = 4 << 20

// bulkHold returns how many bytes of tree nodes a bulk load holds before
// writing them.
func (s *Store) bulkHold() int {
	if _, apart := s.d.(*splitStore); apart {
		return min(bulkNodeBytes, bulkNodeBytesApart)
	}
	return bulkNodeBytes
}

// bulkWriteBytes is the most a batch of a bulk import's tree nodes
// holds: goleveldb takes one batch of tens of megabytes far slower than
// many small ones (45 MB at once took 1.2 s, in parts of 1 MiB nothing
// measurable).
const bulkWriteBytes = 1 << 20

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
	if err := s.beginBulk(ctx, st, &bulkRecord{scope: h.Scope}); err != nil {
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
			return errors.Join(context.Cause(ctx), s.endBulk(ctx, mode, st, build, endImport(st, last)))
		case errors.Is(p.err, io.EOF):
			rep.Batches = p.at.Batches()
			return s.endBulk(ctx, mode, st, build, endImport(st, nil))
		case p.err != nil:
			return errors.Join(fmt.Errorf("verify: %w", p.err), s.dropBulk(ctx, mode, st, rep))
		}
		at, err := p.at.MarshalBinary()
		if err != nil {
			return errors.Join(err, s.endBulk(ctx, mode, st, build, endImport(st, last)))
		}
		added, rejected, err := s.storeBulkBatch(ctx, st, build, p.b, at, rep)
		if errors.Is(err, errNodesLost) {
			// The build cannot end: the bulk record stays, and the next
			// OpenStore rebuilds the scope from the records stored.
			return err
		}
		if errors.Is(err, reconcile.ErrNotAscending) {
			// The reader checks the key order; a file that slips past
			// it is bad all the same.
			return errors.Join(fmt.Errorf("verify: %w: %w", snapshot.ErrCorrupt, err), s.dropBulk(ctx, mode, st, rep))
		}
		if err != nil {
			return errors.Join(err, s.endBulk(ctx, mode, st, build, endImport(st, last)))
		}
		last = at
		size := p.b.Next - p.b.Offset
		rep.Added += added
		rep.Rejected += rejected
		rep.Bytes += size
		progress(int(p.at.Count()), p.b.Next)
	}
	// The channel closes without an EOF item only when ctx ended.
	return errors.Join(context.Cause(ctx), s.endBulk(ctx, mode, st, build, endImport(st, last)))
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

// storeBulkBatch stores a batch of a bulk import (storeBulk), its mid-load
// node writes with the import record of the state at after the batch.
func (s *Store) storeBulkBatch(ctx context.Context, st *scopeState, build *reconcile.Builder, b snapshot.Batch, at []byte, rep *ImportReport) (added, rejected int, err error) {
	reject := func(err error) {
		if rep.RejectReason == nil {
			rep.RejectReason = err
		}
		rejected++
	}
	added, err = s.storeBulk(ctx, st, build, b.Messages, b.Keys, reject, writeImportRecord(st, at))
	return added, rejected, err
}

// storeBulk writes the records of the messages that the store accepts
// (check; reject hears of the others) in one commit, then adds their keys
// to the build, so that the build holds exactly the keys stored; once it
// holds bulkHold of nodes, it writes those (writeNodes), the last
// part with what last writes (errNodesLost if that fails). Keys not in
// ascending order, after those of the batches before, fail with
// reconcile.ErrNotAscending before anything is written.
func (s *Store) storeBulk(ctx context.Context, st *scopeState, build *reconcile.Builder, msgs []reconcile.Message, keys []reconcile.Key, reject func(error), last writeFunc) (int, error) {
	batch, err := s.d.Batch(ctx)
	if err != nil {
		return 0, err
	}
	w := newRecordWriter(batch, s.cfg.hashIndex)
	prev, have := build.Last()
	stored := make([]reconcile.Key, 0, len(msgs))
	for i := range msgs {
		m, k := &msgs[i], keys[i]
		if err := s.check(m); err != nil {
			reject(err)
			continue
		}
		if have && !prev.Less(k) {
			return 0, fmt.Errorf("%w: %v after %v", reconcile.ErrNotAscending, k, prev)
		}
		prev, have = k, true
		if err := w.put(ctx, st.id, st.keys, k, m); err != nil {
			return 0, err
		}
		stored = append(stored, k)
	}
	if err := batch.Commit(ctx); err != nil {
		return 0, err
	}
	for _, k := range stored {
		if err := build.Add(k); err != nil {
			return 0, err // the order was checked: not reached
		}
	}
	st.loading.Add(int64(len(stored)))
	if build.Buffered() < s.bulkHold() {
		return len(stored), nil
	}
	if err := s.writeNodes(ctx, build, last); err != nil {
		return len(stored), fmt.Errorf("%w: %w", errNodesLost, err)
	}
	return len(stored), nil
}

// errNodesLost is returned by storeBulkBatch when a write of the build's
// nodes failed: the build has given those nodes up, so it can no longer
// end in a whole tree.
var errNodesLost = errors.New("a write of the tree's nodes failed")

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
