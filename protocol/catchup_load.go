package protocol

import (
	"context"

	"github.com/storesync/storesync/reconcile"
)

// CatchUpLoader is a CatchUpStore that can take a catch-up of one range
// into a scope it holds nothing of as a single load, in key order, faster
// than batch by batch (a store can then build the scope's tree in one
// pass instead of inserting every key). Service.CatchUp uses it when the
// catch-up has a single range, which is the case with one peer.
type CatchUpLoader interface {
	CatchUpStore
	// LoadCatchUp starts a load of the range of cur into sc. It returns
	// nil and no error when the store takes this catch-up batch by batch
	// through PutCatchUp instead (sc holds messages, or a load of it is
	// running).
	LoadCatchUp(ctx context.Context, sc reconcile.Scope, cur Cursor) (CatchUpLoad, error)
}

// CatchUpLoad is one load of a catch-up range (CatchUpLoader). The
// protocol calls Put with the range's verified batches, their keys rising
// strictly over the whole load, then End once, whatever happened.
type CatchUpLoad interface {
	// Put stores a batch and returns how many of its messages were new.
	// When Put returns, the batch survives a crash, and so does a cursor
	// at least as far as the last batch stored before any message that
	// reached the scope by other ways meanwhile; cur is where the range
	// stands after the batch. A batch Put fails to store is not stored.
	Put(ctx context.Context, msgs []reconcile.Message, keys []reconcile.Key, cur Cursor) (int, error)
	// End ends the load: what Put stored becomes part of the scope, and
	// cur, where the range stands, is saved (deleted when Done). It runs
	// whatever ctx says; after a failure the store keeps what Put stored
	// when it is next opened.
	End(ctx context.Context, cur Cursor) error
}

// batchStore stores a catch-up batch with the cursor it moves its range
// to: PutCatchUp, or a CatchUpLoad's Put.
type batchStore func(ctx context.Context, msgs []reconcile.Message, keys []reconcile.Key, cur Cursor) (int, error)

// startLoad returns how the batches of a catch-up with the ranges curs
// are stored, and the end of its load when it is one: a single range
// into a CatchUpLoader that takes it goes to a load; anything else goes
// batch by batch to PutCatchUp.
func startLoad(ctx context.Context, cs CatchUpStore, sc reconcile.Scope, curs []Cursor) (batchStore, func(context.Context) error, error) {
	each := func(ctx context.Context, msgs []reconcile.Message, keys []reconcile.Key, cur Cursor) (int, error) {
		return cs.PutCatchUp(ctx, sc, msgs, keys, cur)
	}
	l, ok := cs.(CatchUpLoader)
	if !ok || len(curs) != 1 || !curs[0].remaining() {
		return each, nil, nil
	}
	load, err := l.LoadCatchUp(ctx, sc, curs[0])
	if err != nil || load == nil {
		return each, nil, err
	}
	return load.Put, func(ctx context.Context) error { return load.End(ctx, curs[0]) }, nil
}
