package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"

	"github.com/storesync/storesync/reconcile"
)

// The journal lets a commit of new messages skip the trees. A commit
// writes the messages' records and one journal record naming their keys,
// per scope, in one batch; the keys wait in their scope's pending set
// until a flush inserts them into the trees, in one Txn per scope, and
// writes the trees' nodes, the scope records and the deletion of the
// journal records they came from, all in one batch. A message added at
// the right edge of a tree otherwise rewrites the open leaf on every
// commit, and a commit over many scopes rewrites a leaf per scope: the
// journal turns that into one leaf write per scope per flush.
//
// A crash between the two leaves messages whose keys are only in the
// journal; OpenStore replays it into the pending sets and flushes, so the
// trees and the scope records again hold exactly the stored messages.
// Whatever reads a tree flushes first (Store.Tree, Set), so readers of a
// tree never miss a committed message.

// journalKey holds the journal records, by sequence number.
var journalKey = rootKey.ChildString("j")

// journalFormat is the first byte of a journal record.
const journalFormat = 1

// journalRecordKey returns the key of the journal record with sequence
// number seq: 16 hex digits, so that records list in order.
func journalRecordKey(seq uint64) ds.Key {
	return ds.RawKey(fmt.Sprintf("%s/%016x", journalKey, seq))
}

// journalEntry is one scope's part of a journal record.
type journalEntry struct {
	id   [8]byte
	keys []reconcile.Key // sorted
}

// encodeJournal serialises a journal record: format, then per scope its
// ID, the length of its key list as a uvarint and the key list
// (reconcile.AppendKeys).
func encodeJournal(entries []journalEntry) []byte {
	b := []byte{journalFormat}
	for _, e := range entries {
		b = append(b, e.id[:]...)
		b = binary.AppendUvarint(b, uint64(reconcile.KeysSize(e.keys)))
		b = reconcile.AppendKeys(b, e.keys)
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
	var out []journalEntry
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, errBadJournal
		}
		var e journalEntry
		copy(e.id[:], b)
		n, k := binary.Uvarint(b[8:])
		if k <= 0 || n > uint64(len(b)-8-k) {
			return nil, errBadJournal
		}
		list := b[8+k : 8+k+int(n)]
		keys, err := reconcile.ParseKeys(list, len(list))
		if err != nil || len(keys) == 0 {
			return nil, errBadJournal
		}
		e.keys = keys
		out = append(out, e)
		b = b[8+k+int(n):]
	}
	return out, nil
}

// replayJournal reads the journal left by commits that no flush covered
// (a crash, or a kill) into the pending sets of their scopes, so that the
// next flush writes them into the trees.
func (s *Store) replayJournal(ctx context.Context) error {
	res, err := s.d.Query(ctx, dsq.Query{Prefix: journalKey.String(), Orders: []dsq.Order{dsq.OrderByKey{}}})
	if err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	recs, err := res.Rest()
	if err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
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
			next := *st.snap.Load()
			for i := range e.keys {
				key := e.keys[i]
				if _, dup := st.pendingSet[key]; dup {
					continue
				}
				st.pendingSet[key] = struct{}{}
				st.pending = append(st.pending, key)
				s.pendingN++
				next.agg = next.agg.AddHash(&key.Hash)
				next.newest = max(next.newest, int64(key.TS))
			}
			st.snap.Store(&next)
			s.dirty[st] = struct{}{}
		}
		if i == 0 {
			s.jfrom = seq
		}
		s.seq = seq + 1
	}
	return nil
}
