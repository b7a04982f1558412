package node

import (
	"context"
	"errors"
	"fmt"

	ds "github.com/ipfs/go-datastore"

	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// A catch-up into a kept scope with no message is a bulk load, as the
// import of a snapshot into one is (snapshot_bulk.go): the streamed
// records are written alone, in key order, and the tree is built from
// their keys as they pass (reconcile.Builder); commits meanwhile are held
// pending and go into the built tree at the end (endHeld).
//
// The load saves no cursor with its batches: a record outside the run of
// new message records, in every commit, makes LevelDB compact what it
// could otherwise move down a level untouched (the README's ingest
// section). Its cursor is saved at its end, and after a crash OpenStore
// derives it from the records stored (catchUpCursorAfterCrash): the last
// key stored in the range, below any key that reached the scope by other
// ways meanwhile, which the bulk record keeps (bulkRecord.live, written
// by the commit that lowers it). Every key below that one came from the
// stream, which delivers the range in key order.

// LoadCatchUp implements protocol.CatchUpLoader. The load claims the
// scope with its first batch that holds messages, so that a peer that
// serves nothing costs no write: a bulk load if the scope then holds no
// message and no other load holds it, else batch by batch (PutCatchUp).
func (p protocolStore) LoadCatchUp(ctx context.Context, sc reconcile.Scope, cur protocol.Cursor) (protocol.CatchUpLoad, error) {
	s := p.Store
	st, ok := s.state(sc)
	if !ok {
		return nil, protocol.ErrUnknownScope
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	return &catchUpLoad{s: s, st: st, at: cur}, nil
}

// claimLoad holds st for a catch-up load and writes its bulk record, if
// st holds no message and no other load holds it; it returns the load's
// build, or nil when the catch-up goes batch by batch. The bulk record
// is written under st.wmu, before any commit can lower its live key;
// the settling that follows takes no lock.
func (s *Store) claimLoad(ctx context.Context, st *scopeState, rec *bulkRecord) (*reconcile.Builder, error) {
	build, err := s.holdForLoad(ctx, st, rec)
	if err != nil || build == nil {
		return nil, err
	}
	if err := s.settleAfterMessages(); err != nil {
		return nil, errors.Join(err, s.recoverHeld(ctx, st))
	}
	return build, nil
}

// holdForLoad is the part of claimLoad under st.wmu.
func (s *Store) holdForLoad(ctx context.Context, st *scopeState, rec *bulkRecord) (*reconcile.Builder, error) {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	if st.heldOrFilled() {
		return nil, nil
	}
	build, err := st.tree.Build()
	if err != nil {
		return nil, err
	}
	if err := s.writeBulkRecord(ctx, st, rec); err != nil {
		return nil, errors.Join(err, s.d.Delete(context.WithoutCancel(ctx), bulkRecordKey(st.idHex)))
	}
	st.bulk, st.load = true, rec
	return build, nil
}

// catchUpLoad is a catch-up's load of a kept scope.
type catchUpLoad struct {
	s     *Store
	st    *scopeState
	at    protocol.Cursor    // where the range stands, as stored
	mode  loadMode           // how the batches are stored
	build *reconcile.Builder // the bulk load's
	lost  error              // errNodesLost, once a write of the build's nodes failed
	ended bool
}

// loadMode says how a catch-up load stores its batches.
type loadMode int

const (
	// unclaimed: no batch with messages yet.
	unclaimed loadMode = iota
	// inBulk: a bulk load holds the scope.
	inBulk
	// byBatch: each batch goes to PutCatchUp with its cursor.
	byBatch
)

var _ protocol.CatchUpLoad = (*catchUpLoad)(nil)

// Put implements protocol.CatchUpLoad. The first batch with messages
// claims the scope (claimLoad); in a bulk load, Put writes the batch's
// records in one commit and adds their keys to the build (storeBulk).
// Messages the store refuses (check) are left out, as Put leaves them.
func (l *catchUpLoad) Put(ctx context.Context, msgs []reconcile.Message, keys []reconcile.Key, cur protocol.Cursor) (int, error) {
	switch {
	case l.ended:
		return 0, errors.New("storesync: the catch-up load has ended")
	case l.lost != nil:
		return 0, l.lost
	case len(msgs) != len(keys):
		return 0, fmt.Errorf("storesync: %d messages and %d keys", len(msgs), len(keys))
	}
	if err := l.s.enter(); err != nil {
		return 0, err
	}
	defer l.s.calls.Done()
	if l.mode == unclaimed && len(msgs) > 0 {
		start := l.at
		build, err := l.s.claimLoad(ctx, l.st, &bulkRecord{scope: l.st.scope, catchUp: &start})
		switch {
		case err != nil:
			return 0, err
		case build == nil:
			l.mode = byBatch
		default:
			l.mode, l.build = inBulk, build
		}
	}
	if l.mode != inBulk {
		n, err := protocolStore{l.s}.PutCatchUp(ctx, l.st.scope, msgs, keys, cur)
		if err == nil {
			l.at = cur
		}
		return n, err
	}
	n, err := l.s.storeBulk(ctx, l.st, l.build, msgs, keys, func(error) {}, nil)
	if errors.Is(err, errNodesLost) {
		l.lost = err
	}
	return n, err
}

// End implements protocol.CatchUpLoad: it ends a bulk load (endBulk)
// with the cursor's record, and lets the scope's keys be flushed again;
// a load that went batch by batch, or stored nothing, has nothing to
// end. When the build's nodes were lost, or the end fails,
// what the load stored goes pending as a journal's replay would make it
// (recoverHeld), and the bulk record stays, from which the next
// OpenStore rebuilds the scope and its cursor.
func (l *catchUpLoad) End(ctx context.Context, cur protocol.Cursor) error {
	if l.ended {
		return nil
	}
	l.ended = true
	s, st := l.s, l.st
	defer s.calls.Done()
	if l.mode != inBulk {
		return nil // each batch saved its cursor
	}
	err := l.lost
	if err == nil {
		err = s.endBulk(ctx, emptyScope, st, l.build, endCatchUp(st, cur))
	}
	return errors.Join(err, s.recoverHeld(ctx, st))
}

// endCatchUp returns the end of a catch-up load's own records: its
// cursor (deleted when Done, not written when the range has not moved)
// and the deletion of the bulk record.
func endCatchUp(st *scopeState, cur protocol.Cursor) writeFunc {
	return func(ctx context.Context, b ds.Write) error {
		if cur.Done || cur.After != cur.Lo {
			if err := writeCursors(st.idHex, []protocol.Cursor{cur})(ctx, b); err != nil {
				return err
			}
		}
		return b.Delete(ctx, bulkRecordKey(st.idHex))
	}
}

// noteLive writes into a commit's batch the bulk record of the catch-up
// that holds st, when the commit adds a key below its live key (the
// commit's least new key is least). The caller holds st.wmu, and calls
// the returned function once the batch commits.
func noteLive(ctx context.Context, b ds.Write, st *scopeState, least reconcile.Key) (func(), error) {
	rec := st.load
	if rec == nil || (rec.live != (reconcile.Key{}) && !least.Less(rec.live)) {
		return nil, nil
	}
	next := *rec
	next.live = least
	if err := b.Put(ctx, bulkRecordKey(st.idHex), next.encode()); err != nil {
		return nil, err
	}
	return func() { rec.live = least }, nil
}

// errFound stops a scan at the record it looked for.
var errFound = errors.New("found")

// catchUpCursorAfterCrash returns the cursor of the catch-up load whose
// bulk record a crash left: After is the last key stored in the range
// above where the load began and below the least key that reached the
// scope by other ways meanwhile, as only the stream stored those.
func catchUpCursorAfterCrash(ctx context.Context, d ds.Datastore, rec bulkRecord) (protocol.Cursor, error) {
	cur := *rec.catchUp
	hi := cur.Hi
	if rec.live != (reconcile.Key{}) && rec.live.Less(hi) {
		hi = rec.live
	}
	lo := cur.After.Next()
	if !lo.Less(hi) {
		return cur, nil
	}
	st := newScopeState(rec.scope)
	if rr, ok := d.(rangeReader); ok {
		err := scanMsgsIn(ctx, rr, st, lo, hi, true, func(k reconcile.Key, _ []byte) error {
			cur.After = k
			return errFound
		})
		if err != nil && !errors.Is(err, errFound) {
			return cur, err
		}
		return cur, nil
	}
	err := eachStoredKey(ctx, d, st, func(k reconcile.Key) error {
		if !k.Less(lo) && k.Less(hi) && cur.After.Less(k) {
			cur.After = k
		}
		return nil
	})
	return cur, err
}
