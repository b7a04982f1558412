package node

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	ds "github.com/ipfs/go-datastore"

	"github.com/storesync/storesync/reconcile"
)

// change is what one commit does to one kept scope: messages to add and
// keys to delete. commit fills in the outcome.
type change struct {
	st *scopeState
	// add holds indices, into the message slice given to commit, of the
	// messages of st to add; keys[i] is the key of msgs[add[i]].
	add  []int
	keys []reconcile.Key
	del  []reconcile.Key

	// added holds the indices into the message slice of the messages
	// that were new, in key order.
	added []int
	// removed counts the deleted keys that were present.
	removed int

	x    *reconcile.Txn
	next scopeSnap
}

// writeFunc adds records of the caller's to a commit's batch: a cursor, a
// progress record. It must only write; reading the store from it could
// deadlock on the trees the commit holds.
type writeFunc func(ctx context.Context, w ds.Write) error

// commit is the store's one write path. It applies the changes, at most
// one per scope, to their trees and records, and writes the messages of
// the keys the trees report as new (the tree is the duplicate check: no
// read per message) and removes those of the keys they report deleted,
// all in one datastore batch together with what extra writes; then it
// publishes the new states. When commit returns nil every change is
// stored and visible; when it fails, nothing is.
//
// The trees are locked in the order of their scope IDs, so that commits
// over overlapping sets of scopes never wait on each other in a cycle.
func (s *Store) commit(ctx context.Context, msgs []reconcile.Message, chs []*change, extra writeFunc) (err error) {
	slices.SortFunc(chs, func(a, b *change) int { return bytes.Compare(a.st.id[:], b.st.id[:]) })
	for _, ch := range chs {
		ch.x = ch.st.tree.Begin()
	}
	defer func() {
		if err != nil {
			for _, ch := range chs {
				ch.x.Discard()
			}
		}
	}()
	b, err := s.d.Batch(ctx)
	if err != nil {
		return err
	}
	for _, ch := range chs {
		if err := s.stage(ctx, b, msgs, ch); err != nil {
			return fmt.Errorf("scope %s: %w", ch.st.scope, err)
		}
	}
	if extra != nil {
		if err := extra(ctx, b); err != nil {
			return err
		}
	}
	if err := b.Commit(ctx); err != nil {
		return err
	}
	now := s.cfg.now()
	for _, ch := range chs {
		if len(ch.added) > 0 {
			ch.next.lastAdded = now
		}
		// The snapshot goes first: the scope's next writer starts from it
		// as soon as Commit releases the tree.
		ch.st.snap.Store(&ch.next)
		ch.x.Commit()
	}
	return nil
}

// stage writes one change into the batch: the tree's nodes, the records
// of the messages added and removed, and the scope record.
func (s *Store) stage(ctx context.Context, b ds.Write, msgs []reconcile.Message, ch *change) error {
	x, st := ch.x, ch.st
	for _, k := range ch.del {
		x.Delete(k)
	}
	for _, k := range ch.keys {
		x.Insert(k)
	}
	if err := x.Write(ctx, b); err != nil {
		return err
	}
	ch.next = *st.snap.Load()
	agg := ch.next.agg
	added := x.AddedKeys()
	if len(added) > 0 {
		// Walk the added keys (sorted) and the change's messages sorted
		// by key side by side; a message given twice maps once.
		order := make([]int, len(ch.add))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return ch.keys[a].Compare(ch.keys[b]) })
		j := 0
		for _, k := range added {
			for j < len(order) && ch.keys[order[j]] != k {
				j++
			}
			if j == len(order) {
				return fmt.Errorf("%w: the tree added a key no message has", ErrCorrupt)
			}
			m := &msgs[ch.add[order[j]]]
			data, err := m.ToPB().Marshal()
			if err != nil {
				return err
			}
			if err := b.Put(ctx, st.keys.msg(k), data); err != nil {
				return err
			}
			ch.added = append(ch.added, ch.add[order[j]])
			agg = agg.AddHash(&k.Hash)
			j++
		}
	}
	for _, k := range x.RemovedKeys() {
		if err := b.Delete(ctx, st.keys.msg(k)); err != nil {
			return err
		}
		agg = agg.SubHash(&k.Hash)
	}
	ch.removed = len(x.RemovedKeys())
	if len(added) == 0 && ch.removed == 0 {
		return nil
	}
	if agg != x.Root() {
		// The messages written and the tree would disagree: refuse the
		// commit rather than store what the next open reports as corrupt.
		return fmt.Errorf("%w: the tree's root differs from its messages' sum", ErrCorrupt)
	}
	ch.next.agg = agg
	ch.next.newest = 0
	if last, ok := x.Last(); ok {
		ch.next.newest = int64(last.TS)
	}
	return b.Put(ctx, scopeRecordKey(st.idHex), (&scopeRecord{scope: st.scope, agg: agg}).encode())
}
