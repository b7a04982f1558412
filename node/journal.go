package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"

	"github.com/storesync/storesync/reconcile"
)

// The journal lets a commit of new messages skip the trees. A commit
// writes the messages' records and one journal record naming, per scope,
// the range of their keys, in one batch; the keys wait in their scope's
// pending set until a flush inserts them into the trees, in one Txn per
// scope, and writes the trees' nodes, the scope records and the deletion
// of the journal records they came from, all in one batch. A flush runs
// in the background (or in a commit, past a backlog: flushDue); it takes
// the pending keys into the scopes' flushing sets and then lets commits
// to the scopes go on, which look keys up in both sets. A message
// added at the right edge of a tree otherwise rewrites the open leaf on
// every commit, and a commit over many scopes rewrites a leaf per scope:
// the journal turns that into one leaf write per scope per flush.
//
// A crash between the two leaves messages that are stored but not in
// their trees, all within the ranges the journal names. In a data folder
// of two LevelDBs (splitStore), a commit's batch writes its journal
// record before its messages, so a kill between the two leaves a journal
// range with none of them, never messages outside the journal; a
// deletion's batch names its range too (commitDeletes). OpenStore reads
// the message records in those ranges, makes those the tree lacks pending
// and flushes, so the trees and the scope records again hold exactly the
// stored messages. Whatever reads a tree flushes first (Store.Tree, Set),
// so readers of a tree never miss a committed message.
//
// A record names ranges rather than keys so that it costs a commit 89
// bytes per scope, not 40 per message; a scope given one message costs
// 49. Messages mostly arrive in time order, so the ranges are narrow; a
// wide one (a sync of scattered messages) only makes the replay after a
// crash read more records.

// journalKey holds the journal records, by sequence number. Like every
// record written as often as messages, it sorts after the messages, so
// that LevelDB's compactions of new records do not rewrite old messages.
var journalKey = rootKey.ChildString("pending")

// journalFormat is the first byte of a journal record.
const journalFormat = 2

// The parts of a journal entry: a scope ID and a flag, then one key, or
// two for a range.
const (
	journalHead   = 8 + 1
	journalOne    = journalHead + reconcile.KeySize
	journalRange  = journalOne + reconcile.KeySize
	journalIsOne  = 0
	journalIsSpan = 1
)

// journalRecordKey returns the key of the journal record with sequence
// number seq: 16 hex digits, so that records list in order.
func journalRecordKey(seq uint64) ds.Key {
	return ds.RawKey(fmt.Sprintf("%s/%016x", journalKey, seq))
}

// journalEntry is one scope's part of a journal record: the keys of the
// messages the commit added to the scope lie in [lo, hi].
type journalEntry struct {
	id     [8]byte
	lo, hi reconcile.Key
}

// encodeJournal serialises a journal record: format, then per scope its
// ID, a flag, and its range's first key and, unless it is the only one,
// its last (reconcile.Key.Bytes).
func encodeJournal(entries []journalEntry) []byte {
	b := make([]byte, 1, 1+len(entries)*journalRange)
	b[0] = journalFormat
	for _, e := range entries {
		b = append(b, e.id[:]...)
		if e.lo == e.hi {
			b = append(b, journalIsOne)
			b = append(b, e.lo.Bytes()...)
			continue
		}
		b = append(b, journalIsSpan)
		b = append(b, e.lo.Bytes()...)
		b = append(b, e.hi.Bytes()...)
	}
	return b
}

var errBadJournal = errors.New("bad journal record")

// decodeJournal parses the output of encodeJournal.
func decodeJournal(b []byte) ([]journalEntry, error) {
	if len(b) < 1 || b[0] != journalFormat {
		return nil, errBadJournal
	}
	b = b[1:]
	out := make([]journalEntry, 0, len(b)/journalOne)
	for len(b) > 0 {
		if len(b) < journalOne {
			return nil, errBadJournal
		}
		var e journalEntry
		copy(e.id[:], b)
		lo, err := reconcile.KeyFromBytes(b[journalHead:journalOne])
		if err != nil {
			return nil, errBadJournal
		}
		e.lo, e.hi = lo, lo
		switch b[8] {
		case journalIsOne:
			b = b[journalOne:]
		case journalIsSpan:
			if len(b) < journalRange {
				return nil, errBadJournal
			}
			hi, err := reconcile.KeyFromBytes(b[journalOne:journalRange])
			if err != nil || hi.Compare(lo) <= 0 {
				return nil, errBadJournal
			}
			e.hi = hi
			b = b[journalRange:]
		default:
			return nil, errBadJournal
		}
		out = append(out, e)
	}
	return out, nil
}

// replayJournal reads the journal left by commits that no flush covered
// (a crash, or a kill) and makes pending every stored message within its
// ranges that its scope's tree lacks, so that the next flush writes them
// into the trees.
func (s *Store) replayJournal(ctx context.Context) error {
	res, err := s.d.Query(ctx, dsq.Query{Prefix: journalKey.String(), Orders: []dsq.Order{dsq.OrderByKey{}}})
	if err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	recs, err := res.Rest()
	if err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	ranges := make(map[*scopeState][]keyRange)
	for i, r := range recs {
		k := ds.RawKey(r.Key)
		var seq uint64
		if _, err := fmt.Sscanf(k.BaseNamespace(), "%016x", &seq); err != nil || journalRecordKey(seq) != k {
			return fmt.Errorf("%w: stray journal record %s", ErrCorrupt, k)
		}
		entries, err := decodeJournal(r.Value)
		if err != nil {
			return fmt.Errorf("%w: journal record %s: %w", ErrCorrupt, k, err)
		}
		for _, e := range entries {
			st, ok := s.byID[e.id]
			if !ok {
				return fmt.Errorf("%w: journal record %s names a scope not kept", ErrCorrupt, k)
			}
			ranges[st] = append(ranges[st], keyRange{e.lo, e.hi.Next()})
		}
		if i == 0 {
			s.jfrom = seq
		}
		s.seq = seq + 1
	}
	for st, rs := range ranges {
		if err := s.replayScope(ctx, st, mergeRanges(rs)); err != nil {
			return fmt.Errorf("replay the journal of scope %s: %w", st.scope, err)
		}
	}
	return nil
}

// replayScope makes pending the stored messages of st within ranges that
// its tree lacks. Outside OpenStore, the caller holds st.wmu.
func (s *Store) replayScope(ctx context.Context, st *scopeState, ranges []keyRange) error {
	next := *st.snap.Load()
	added := 0
	found := func(k reconcile.Key) error {
		if st.pending.has(k) || st.flushing.has(k) {
			return nil
		}
		in, err := st.tree.Has(ctx, k)
		if err != nil || in {
			return err
		}
		st.pending.add(k)
		added++
		next.agg = next.agg.AddHash(&k.Hash)
		next.newest = max(next.newest, int64(k.TS))
		return nil
	}
	if rr, ok := s.d.(rangeReader); ok {
		for _, r := range ranges {
			err := scanMsgs(ctx, rr, st, r.lo, r.hi, func(k reconcile.Key, _ []byte) error { return found(k) })
			if err != nil {
				return err
			}
		}
	} else {
		// Any other datastore lists the scope's records once.
		err := eachStoredKey(ctx, s.d, st, func(k reconcile.Key) error {
			if !inRanges(ranges, k) {
				return nil
			}
			return found(k)
		})
		if err != nil {
			return err
		}
	}
	st.snap.Store(&next)
	s.jmu.Lock()
	defer s.jmu.Unlock()
	if added > 0 && s.pendingN == 0 {
		s.oldest = s.cfg.now()
	}
	s.pendingN += added
	if st.pending.len() > 0 {
		s.dirty[st] = struct{}{}
	}
	return nil
}

// keyRange is the keys k with lo <= k < hi.
type keyRange struct{ lo, hi reconcile.Key }

// mergeRanges returns the union of rs as disjoint ranges in key order.
func mergeRanges(rs []keyRange) []keyRange {
	slices.SortFunc(rs, func(a, b keyRange) int { return a.lo.Compare(b.lo) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && r.lo.Compare(out[n-1].hi) <= 0 {
			if r.hi.Compare(out[n-1].hi) > 0 {
				out[n-1].hi = r.hi
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// inRanges reports whether k lies in one of the disjoint, ordered ranges.
func inRanges(rs []keyRange, k reconcile.Key) bool {
	// i counts the ranges that start at or below k; only the last of
	// them can hold it.
	i := sort.Search(len(rs), func(i int) bool { return rs[i].lo.Compare(k) > 0 })
	return i > 0 && k.Compare(rs[i-1].hi) < 0
}

// Keys spread over many scopes wait longer: a flush rewrites the open
// leaf of every scope it touches, so it waits for flushPerScope keys a
// scope on average, up to flushAtMost times the configured count.
const (
	flushPerScope = 64
	flushAtMost   = 8
)

// flushDue reports whether enough keys wait for a flush for a commit to
// ask the background flusher for one (due), and whether so many do that
// the commit must flush itself (over): flushBacklog times as many, which
// bounds the keys waiting when commits outpace the flushes. The caller
// holds jmu.
func (s *Store) flushDue() (due, over bool) {
	at := s.cfg.flushAt
	if len(s.dirty) > 1 {
		at = max(at, min(len(s.dirty)*flushPerScope, flushAtMost*at))
	}
	waiting := s.pendingN - s.heldN // held keys wait for their import, not a flush
	return waiting-s.takenN >= at, waiting >= flushBacklog*at
}

// flushBacklog is how many flushes' worth of keys may wait, those being
// flushed included, before a commit flushes rather than ask for a flush.
const flushBacklog = 4
