package node

import (
	"context"
	"fmt"
	"slices"

	"github.com/storesync/storesync/reconcile"
)

// PutResult reports what Put did with each message it was given.
type PutResult struct {
	// Added holds the messages stored by this call, in input order. They
	// share their Payload and Meta with the input.
	Added []reconcile.Message
	// Duplicates counts messages already stored, or given twice.
	Duplicates int
	// Rejected lists the messages refused, by input index.
	Rejected []Rejection
}

// Rejection is a message Put refused: Err wraps ErrInvalidMessage or
// ErrUnknownScope.
type Rejection struct {
	Index int
	Err   error
}

// Put validates and stores messages. Messages of scopes not kept are
// rejected (reported per message with ErrUnknownScope), invalid ones
// (reconcile.Message.Validate) rejected with ErrInvalidMessage, and
// duplicates skipped; neither fails the call. The messages of one scope
// commit in one batch with their tree entries and the scope's updated
// count and sum; each scope's batch commits separately, in the order the
// scopes first appear in msgs. Subscribers see the added messages after
// their batch has committed.
//
// The error is for a failure of the datastore or of ctx; the result then
// still lists what the batches committed before the failure added.
func (s *Store) Put(ctx context.Context, msgs ...reconcile.Message) (PutResult, error) {
	var res PutResult
	if err := s.enter(); err != nil {
		return res, err
	}
	defer s.calls.Done()

	type group struct {
		st  *scopeState
		idx []int
	}
	var groups []*group
	byScope := make(map[*scopeState]*group)
	for i := range msgs {
		if err := msgs[i].Validate(); err != nil {
			res.Rejected = append(res.Rejected, Rejection{Index: i, Err: fmt.Errorf("%w: %w", ErrInvalidMessage, err)})
			continue
		}
		st, ok := s.state(msgs[i].Scope())
		if !ok {
			res.Rejected = append(res.Rejected, Rejection{Index: i, Err: fmt.Errorf("%w: %s", ErrUnknownScope, msgs[i].Scope())})
			continue
		}
		g := byScope[st]
		if g == nil {
			g = &group{st: st}
			byScope[st] = g
			groups = append(groups, g)
		}
		g.idx = append(g.idx, i)
	}

	var added []int
	var err error
	for _, g := range groups {
		if err = ctx.Err(); err != nil {
			break
		}
		var idx []int
		var dups int
		idx, dups, err = s.putScope(ctx, g.st, msgs, g.idx)
		res.Duplicates += dups
		if err != nil {
			err = fmt.Errorf("put into scope %s: %w", g.st.scope, err)
			break
		}
		added = append(added, idx...)
		s.subs.publish(msgs, idx)
	}
	slices.Sort(added)
	for _, i := range added {
		res.Added = append(res.Added, msgs[i])
	}
	return res, err
}

// putScope stores the messages msgs[idx] of one scope in one batch and
// returns the indices of those it added and how many were duplicates.
func (s *Store) putScope(ctx context.Context, st *scopeState, msgs []reconcile.Message, idx []int) ([]int, int, error) {
	b, err := s.d.Batch(ctx)
	if err != nil {
		return nil, 0, err
	}
	x := st.tree.Begin()
	committed := false
	defer func() {
		if !committed {
			x.Discard()
		}
	}()

	// The duplicate checks run under the Txn, which excludes every other
	// writer of the scope, so no message can be added twice.
	prev := st.snap.Load()
	next := *prev
	var added []int
	dups := 0
	seen := make(map[reconcile.Hash]struct{}, len(idx))
	for _, i := range idx {
		m := &msgs[i]
		k := m.Key()
		if _, ok := seen[k.Hash]; ok {
			dups++
			continue
		}
		seen[k.Hash] = struct{}{}
		key := msgKey(st.idHex, k.Hash)
		has, err := s.d.Has(ctx, key)
		if err != nil {
			return nil, dups, err
		}
		if has {
			dups++
			continue
		}
		data, err := m.ToPB().Marshal()
		if err != nil {
			return nil, dups, err
		}
		if err := b.Put(ctx, key, data); err != nil {
			return nil, dups, err
		}
		x.Insert(k)
		next.agg = next.agg.AddHash(&k.Hash)
		next.newest = max(next.newest, m.Timestamp)
		added = append(added, i)
	}
	if len(added) == 0 {
		return nil, dups, nil
	}
	if err := b.Put(ctx, scopeRecordKey(st.idHex), (&scopeRecord{scope: st.scope, agg: next.agg}).encode()); err != nil {
		return nil, dups, err
	}
	if err := x.Write(ctx, b); err != nil {
		return nil, dups, err
	}
	if x.Added() != len(added) {
		// The tree already held a key whose message is missing: the
		// record would no longer match the tree, so nothing is written.
		return nil, dups, fmt.Errorf("%w: tree took %d of %d new messages", ErrCorrupt, x.Added(), len(added))
	}
	if err := b.Commit(ctx); err != nil {
		return nil, dups, err
	}
	next.lastAdded = s.cfg.now()
	st.snap.Store(&next)
	committed = true
	x.Commit()
	return added, dups, nil
}
