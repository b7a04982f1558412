package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	ds "github.com/ipfs/go-datastore"

	"github.com/storesync/storesync/reconcile"
)

// change is one kept scope's part of a commit. Its messages are
// msgs[add[off:off+n]], with keys keys[off:off+n]; the commit fills in
// the first fresh of added[off:] and fresh[off:]: the indices into msgs
// of the messages that were new, in key order, and their keys.
type change struct {
	st         *scopeState
	off, n     int32
	freshCount int32
}

// changes is what one commit does: a change per scope, over arrays they
// share, so that a commit spread over many scopes allocates nothing per
// scope.
type changes struct {
	chs         []change
	add, added  []int
	keys, fresh []reconcile.Key
}

// keysOf returns the keys of ch's messages, in input order.
func (c *changes) keysOf(ch *change) []reconcile.Key { return c.keys[ch.off : ch.off+ch.n] }

// freshOf returns the keys ch added, in key order.
func (c *changes) freshOf(ch *change) []reconcile.Key {
	return c.fresh[ch.off : ch.off+ch.freshCount]
}

// addedOf returns the indices into msgs of the messages ch added.
func (c *changes) addedOf(ch *change) []int { return c.added[ch.off : ch.off+ch.freshCount] }

// writeFunc adds records of the caller's to a commit's batch: a cursor, a
// progress record. It must only write; reading the store from it could
// deadlock on the scopes the commit holds.
type writeFunc func(ctx context.Context, w ds.Write) error

// lockScopes takes the writer locks of the changes' scopes in the order
// of their scope IDs, so that commits and flushes over overlapping sets
// of scopes never wait on each other in a cycle, and returns the unlock.
func lockScopes(sts []*scopeState) func() {
	slices.SortFunc(sts, func(a, b *scopeState) int { return bytes.Compare(a.id[:], b.id[:]) })
	sts = slices.Compact(sts)
	for _, st := range sts {
		st.wmu.Lock()
	}
	return func() {
		for _, st := range sts {
			st.wmu.Unlock()
		}
	}
}

// commit is the store's one write path for new messages. It writes the
// records of the messages that are new (not given twice, not pending in
// the journal, not in the tree: the tree is the duplicate check, and a
// message at the right edge costs no read) and a journal record of their
// keys, in one datastore batch together with what extra writes; then it
// makes the keys pending and publishes the new states. When commit
// returns nil every new message is stored and visible; when it fails,
// nothing is, but for a split datastore that stored the messages and not
// what extra wrote after them (splitStore): they are visible then. The
// keys reach the trees at the next flush (journal.go).
func (s *Store) commit(ctx context.Context, msgs []reconcile.Message, c *changes, extra writeFunc) error {
	s.commitMu.RLock()
	defer s.commitMu.RUnlock()
	slices.SortFunc(c.chs, func(a, b change) int { return bytes.Compare(a.st.id[:], b.st.id[:]) })
	sts := make([]*scopeState, len(c.chs))
	for i := range c.chs {
		sts[i] = c.chs[i].st
	}
	defer lockScopes(sts)()

	b, err := s.d.Batch(ctx)
	if err != nil {
		return err
	}
	nexts := make([]scopeSnap, len(c.chs))
	var noted []func() // catch-up loads' records this commit lowers, applied once it commits
	rw := newRecordWriter(b, s.cfg.hashIndex)
	journal := make([]journalEntry, 0, len(c.chs))
	for i := range c.chs {
		ch := &c.chs[i]
		if nexts[i], err = s.stage(ctx, rw, msgs, c, ch); err != nil {
			return fmt.Errorf("scope %s: %w", ch.st.scope, err)
		}
		if fresh := c.freshOf(ch); len(fresh) > 0 {
			journal = append(journal, journalEntry{id: ch.st.id, lo: fresh[0], hi: fresh[len(fresh)-1]})
			note, err := noteLive(ctx, b, ch.st, fresh[0])
			if err != nil {
				return err
			}
			if note != nil {
				noted = append(noted, note)
			}
		}
	}
	if len(journal) > 0 {
		if err := b.Put(ctx, journalRecordKey(s.nextSeq()), encodeJournal(journal)); err != nil {
			return err
		}
	}
	if extra != nil {
		// What extra writes (a cursor, an import record) says the
		// messages are stored: it must not commit before them.
		if err := extra(ctx, afterRecords(b)); err != nil {
			return err
		}
	}
	// A split datastore may commit the journal record and not the
	// messages (nothing is stored: the next flush deletes the record), or
	// the messages and not what extra wrote after them: they are stored
	// and named by the journal, so they are published as if the commit
	// had succeeded, and the error is returned.
	cerr := b.Commit(ctx)
	if _, stored := committedParts(cerr); !stored {
		return cerr
	}
	for _, note := range noted {
		note() // the scopes' writer locks are still held
	}
	now := s.cfg.now()
	fresh := 0
	for i := range c.chs {
		ch := &c.chs[i]
		if ch.freshCount == 0 {
			continue
		}
		st := ch.st
		for _, k := range c.freshOf(ch) {
			st.pending.add(k)
		}
		nexts[i].lastAdded = now
		st.snap.Store(&nexts[i])
		fresh += int(ch.freshCount)
	}
	if fresh > 0 {
		s.jmu.Lock()
		for i := range c.chs {
			if c.chs[i].freshCount > 0 {
				s.dirty[c.chs[i].st] = struct{}{}
				if c.chs[i].st.bulk {
					s.heldN += int(c.chs[i].freshCount)
				}
			}
		}
		if s.pendingN == 0 {
			s.oldest = now
		}
		s.pendingN += fresh
		s.jmu.Unlock()
	}
	return cerr
}

// stage writes the records of a change's new messages into the batch and
// returns the scope's state once the batch commits.
func (s *Store) stage(ctx context.Context, w *recordWriter, msgs []reconcile.Message, c *changes, ch *change) (scopeSnap, error) {
	st := ch.st
	next := *st.snap.Load()
	keys, add := c.keysOf(ch), c.add[ch.off:ch.off+ch.n]
	added, fresh := c.added[ch.off:ch.off], c.fresh[ch.off:ch.off]
	// Messages mostly come in key order; only others need sorting.
	var order []int
	if !slices.IsSortedFunc(keys, reconcile.Key.Compare) {
		order = make([]int, len(add))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return keys[a].Compare(keys[b]) })
	}
	at := func(j int) int {
		if order == nil {
			return j
		}
		return order[j]
	}
	for j := range keys {
		o := at(j)
		k := keys[o]
		if j > 0 && keys[at(j-1)] == k {
			continue // given twice
		}
		// newest is at least the timestamp of every stored message
		// (deletes, which may lower it, flush first), so a key past it
		// is new without a look at the pending keys or the tree.
		if next.newest < 0 || k.TS <= uint64(next.newest) {
			if st.pending.has(k) || st.flushing.has(k) {
				continue
			}
			has, err := st.tree.Has(ctx, k)
			if err != nil {
				return next, err
			}
			if has {
				continue
			}
		}
		if err := w.put(ctx, st.id, st.keys, k, &msgs[add[o]]); err != nil {
			return next, err
		}
		added = append(added, add[o])
		fresh = append(fresh, k)
		next.agg = next.agg.AddHash(&k.Hash)
		next.newest = max(next.newest, int64(k.TS))
	}
	ch.freshCount = int32(len(fresh))
	return next, nil
}

// nextSeq returns the journal's next sequence number.
func (s *Store) nextSeq() uint64 {
	s.jmu.Lock()
	defer s.jmu.Unlock()
	seq := s.seq
	s.seq++
	return seq
}

// flush writes the pending keys of every scope into its tree, with the
// scope records, and deletes the journal records they came from, all in
// one datastore batch. It takes the keys from the scopes' pending sets
// (into flushing) under the scopes' locks and then releases them, so
// that commits to the same scopes go on while it writes the trees; a
// commit that must look a key up in a tree being written waits for the
// tree's write. Flushes run one at a time. On failure the keys return to
// pending for the next flush.
func (s *Store) flush(ctx context.Context) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	// No commit is between its journal record and its pending keys while
	// the dirty set is taken: the journal records below seq are exactly
	// those of the keys pending in the dirty scopes.
	s.commitMu.Lock()
	s.jmu.Lock()
	dirty := make([]*scopeState, 0, len(s.dirty))
	for st := range s.dirty {
		dirty = append(dirty, st)
	}
	from, to := s.jfrom, s.seq
	s.jmu.Unlock()
	if len(dirty) == 0 && from == to {
		s.commitMu.Unlock()
		return nil
	}
	unlock := lockScopes(dirty)
	s.commitMu.Unlock()
	// A scope a bulk import holds keeps its keys pending, and its dirty
	// mark, until the import ends.
	dirty = slices.DeleteFunc(slices.Clone(dirty), func(st *scopeState) bool { return st.bulk })
	if len(dirty) == 0 && from == to {
		unlock() // only held keys: nothing to write
		return nil
	}
	aggs := make([]reconcile.Aggregate, len(dirty))
	taken := 0
	for i, st := range dirty {
		st.pending, st.flushing = st.flushing, st.pending // flushing was empty
		aggs[i] = st.snap.Load().agg
		taken += st.flushing.len()
	}
	s.jmu.Lock()
	for _, st := range dirty {
		delete(s.dirty, st)
	}
	s.takenN = taken
	s.jmu.Unlock()
	unlock()

	if err := s.writeFlushing(ctx, dirty, aggs, from, to); err != nil {
		// The keys go back to pending, the scopes back to dirty, and the
		// journal records stay for the next flush.
		unlock := lockScopes(dirty)
		for _, st := range dirty {
			// Keys committed meanwhile are mostly above the taken ones.
			newer := st.pending
			st.pending, st.flushing = st.flushing, pendingKeys{}
			newer.each(st.pending.add)
		}
		s.jmu.Lock()
		for _, st := range dirty {
			if st.pending.len() > 0 {
				s.dirty[st] = struct{}{}
			}
		}
		s.takenN = 0
		s.jmu.Unlock()
		unlock()
		return err
	}
	unlock = lockScopes(dirty)
	for _, st := range dirty {
		st.flushing.reset()
	}
	unlock()
	s.jmu.Lock()
	s.jfrom = to
	s.pendingN -= taken
	s.takenN = 0
	if s.pendingN == 0 {
		s.oldest = time.Time{}
	}
	s.jmu.Unlock()
	return nil
}

// writeFlushing is the body of flush: it inserts each dirty scope's
// flushing keys into its tree, checks the tree's root against aggs (the
// scope's state when they were taken) and commits the trees' writes, the
// scope records and the deletion of the journal records [from, to) in
// one batch.
func (s *Store) writeFlushing(ctx context.Context, dirty []*scopeState, aggs []reconcile.Aggregate, from, to uint64) error {
	b, err := s.d.Batch(ctx)
	if err != nil {
		return err
	}
	txs := make([]*reconcile.Txn, 0, len(dirty))
	discard := func() {
		for _, x := range txs {
			x.Discard()
		}
	}
	for i, st := range dirty {
		x := st.tree.Begin()
		txs = append(txs, x)
		x.Grow(st.flushing.len())
		st.flushing.each(x.Insert)
		if err := x.Write(ctx, b); err != nil {
			discard()
			return fmt.Errorf("flush scope %s: %w", st.scope, err)
		}
		if x.Added() != st.flushing.len() || x.Root() != aggs[i] {
			// The messages stored and the tree would disagree: refuse
			// rather than write what the next open reports as corrupt.
			discard()
			return fmt.Errorf("%w: scope %s: the tree took %d of %d pending keys, or its root differs from its messages' sum",
				ErrCorrupt, st.scope, x.Added(), st.flushing.len())
		}
		if err := b.Put(ctx, scopeRecordKey(st.idHex), (&scopeRecord{scope: st.scope, agg: aggs[i]}).encode()); err != nil {
			discard()
			return err
		}
	}
	for seq := from; seq < to; seq++ {
		if err := b.Delete(ctx, journalRecordKey(seq)); err != nil {
			discard()
			return err
		}
	}
	if err := b.Commit(ctx); err != nil {
		discard()
		return err
	}
	for _, x := range txs {
		x.Commit()
	}
	return nil
}

// errPendingKeys is returned by commitDeletes for a scope with keys not
// yet flushed: the caller flushes and tries again.
var errPendingKeys = errors.New("scope has pending keys")

// flushIfPending flushes when any scope has pending keys.
func (s *Store) flushIfPending(ctx context.Context) error {
	s.jmu.Lock()
	n := s.pendingN
	s.jmu.Unlock()
	if n == 0 {
		return nil
	}
	return s.flush(ctx)
}

// commitDeletes removes the messages with the given keys from one scope,
// with their tree entries and the scope's updated count and sum, in one
// batch, and returns how many were stored. The scope must have no
// pending keys: the caller flushes first.
func (s *Store) commitDeletes(ctx context.Context, st *scopeState, keys []reconcile.Key) (int, error) {
	s.commitMu.RLock()
	defer s.commitMu.RUnlock()
	st.wmu.Lock()
	defer st.wmu.Unlock()
	if st.pending.len() > 0 || st.flushing.len() > 0 {
		return 0, errPendingKeys
	}
	b, err := s.d.Batch(ctx)
	if err != nil {
		return 0, err
	}
	x := st.tree.Begin()
	for _, k := range keys {
		x.Delete(k)
	}
	if err := x.Write(ctx, b); err != nil {
		x.Discard()
		return 0, err
	}
	next := *st.snap.Load()
	for _, k := range x.RemovedKeys() {
		if err := b.Delete(ctx, st.keys.msg(k)); err != nil {
			x.Discard()
			return 0, err
		}
		if s.cfg.hashIndex {
			if err := b.Delete(ctx, indexKey(&k.Hash)); err != nil {
				x.Discard()
				return 0, err
			}
		}
		next.agg = next.agg.SubHash(&k.Hash)
	}
	removed := len(x.RemovedKeys())
	if removed == 0 {
		x.Discard()
		return 0, nil
	}
	if next.agg != x.Root() {
		x.Discard()
		return 0, fmt.Errorf("%w: the tree's root differs from its messages' sum", ErrCorrupt)
	}
	next.newest = 0
	if last, ok := x.Last(); ok {
		next.newest = int64(last.TS)
	}
	if err := b.Put(ctx, scopeRecordKey(st.idHex), (&scopeRecord{scope: st.scope, agg: next.agg}).encode()); err != nil {
		x.Discard()
		return 0, err
	}
	// The journal names the range of the deleted records, as a commit's
	// names the range of new ones: where the tree's part of this batch
	// commits before the records' (splitStore), a kill between the two
	// leaves records the tree lacks, and OpenStore's replay puts them
	// back in the tree, so that the deletion did not happen rather than
	// half of it. The next flush deletes the record.
	rm := x.RemovedKeys()
	lo, hi := slices.MinFunc(rm, reconcile.Key.Compare), slices.MaxFunc(rm, reconcile.Key.Compare)
	if err := b.Put(ctx, journalRecordKey(s.nextSeq()), encodeJournal([]journalEntry{{id: st.id, lo: lo, hi: hi}})); err != nil {
		x.Discard()
		return 0, err
	}
	if err := b.Commit(ctx); err != nil {
		tree, records := committedParts(err)
		if !tree {
			x.Discard()
			return 0, err
		}
		// A split datastore committed the tree's part and not the
		// deletion of the records: the tree in memory follows the one
		// stored, and the records still there go back into it as pending
		// keys, as OpenStore's replay would put them after a kill.
		st.snap.Store(&next)
		x.Commit()
		if !records {
			if rerr := s.replayScope(ctx, st, []keyRange{{lo, hi.Next()}}); rerr != nil {
				return 0, errors.Join(err, rerr)
			}
		}
		return 0, err
	}
	st.snap.Store(&next)
	x.Commit()
	return removed, nil
}
