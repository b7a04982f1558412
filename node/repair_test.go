package node_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
)

// halfBatching is a datastore one of whose batches (the armed-th from
// when it was armed) applies the first half of its operations and fails:
// a datastore that does not apply a batch atomically, caught by a crash
// in the middle of one.
type halfBatching struct {
	ds.Batching
	armed atomic.Int32
	// dead is set by the batch applied in half: the process has crashed
	// there, so no later commit applies anything (a background flush
	// retrying would otherwise mend the damage).
	dead atomic.Bool
}

type batchOp struct {
	k   ds.Key
	v   []byte
	del bool
}

type halfBatch struct {
	h   *halfBatching
	ops []batchOp
}

func (h *halfBatching) Batch(context.Context) (ds.Batch, error) { return &halfBatch{h: h}, nil }

func (b *halfBatch) Put(_ context.Context, k ds.Key, v []byte) error {
	b.ops = append(b.ops, batchOp{k: k, v: append([]byte(nil), v...)})
	return nil
}

func (b *halfBatch) Delete(_ context.Context, k ds.Key) error {
	b.ops = append(b.ops, batchOp{k: k, del: true})
	return nil
}

var errHalf = errors.New("injected: the batch was applied in half")

func (b *halfBatch) Commit(ctx context.Context) error {
	if b.h.dead.Load() {
		return errHalf
	}
	ops, err := b.ops, error(nil)
	if b.h.armed.Add(-1) == 0 {
		ops, err = ops[:len(ops)/2], errHalf
		b.h.dead.Store(true)
	}
	for _, o := range ops {
		var e error
		if o.del {
			e = b.h.Batching.Delete(ctx, o.k)
		} else {
			e = b.h.Batching.Put(ctx, o.k, o.v)
		}
		if e != nil {
			return e
		}
	}
	return err
}

// storedMessages counts the message records of a datastore.
func storedMessages(t *testing.T, d ds.Datastore) int {
	t.Helper()
	res, err := d.Query(t.Context(), dsq.Query{Prefix: "/storesync/m", KeysOnly: true})
	require.NoError(t, err)
	all, err := res.Rest()
	require.NoError(t, err)
	return len(all)
}

// TestHalfAppliedBatchIsFoundAndRepaired: over a datastore that applies
// a batch in half (a commit of new messages, or a flush of pending keys
// into the tree), the next open that verifies fails with ErrCorrupt and
// says how to repair; Repair rebuilds trees and records from the
// messages, after which the store opens verified, holds exactly the
// messages that were written, and takes new ones.
func TestHalfAppliedBatchIsFoundAndRepaired(t *testing.T) {
	for _, which := range []string{"commit", "flush"} {
		t.Run(which, func(t *testing.T) {
			ctx := t.Context()
			h := &halfBatching{Batching: dssync.MutexWrap(ds.NewMapDatastore())}
			// A flush asked for at every 64 keys, so that both kinds of
			// batch come. The store is never closed: it crashes.
			s, err := node.OpenStore(ctx, h, node.WithFlush(64, time.Hour))
			require.NoError(t, err)
			require.NoError(t, s.AddScope(ctx, scopeA))
			r := rand.New(rand.NewPCG(3, 4))
			put := func(n int) error {
				_, err := s.Put(ctx, randMsgs(r, scopeA, n, 1e12)...)
				return err
			}
			for range 10 {
				require.NoError(t, put(50))
			}
			// Reading the tree flushes what waits, after any flush in
			// the background: none runs now, and none can start before
			// a commit makes keys pending again.
			_, ok := s.Tree(scopeA)
			require.True(t, ok)
			if which == "commit" {
				h.armed.Store(1)
				require.ErrorIs(t, put(40), errHalf) // 40 keys: no flush follows
			} else {
				// 64 keys: the put's commit, then a flush in the
				// background, the batch applied in half.
				h.armed.Store(2)
				require.NoError(t, put(64), "the messages committed; the flush after them fails")
				require.Eventually(t, h.dead.Load, 10*time.Second, time.Millisecond,
					"the flush came, and was the batch applied in half")
			}
			// A crash: the store is dropped, not closed, and its
			// datastore wrapper stays dead; the next process opens the
			// datastore itself.
			d := h.Batching

			_, err = node.OpenStore(ctx, d, node.WithVerifyOnOpen(true))
			require.ErrorIs(t, err, node.ErrCorrupt)
			require.ErrorContains(t, err, "Repair (storesync repair)")

			reps, err := node.Repair(ctx, d)
			require.NoError(t, err)
			require.Len(t, reps, 1)
			want := storedMessages(t, d)
			require.EqualValues(t, want, reps[0].Messages)
			require.Zero(t, reps[0].Dropped)

			again, err := node.OpenStore(ctx, d, node.WithVerifyOnOpen(true))
			require.NoError(t, err)
			st, ok := again.Stats(scopeA)
			require.True(t, ok)
			require.EqualValues(t, want, st.Count)
			require.Equal(t, reps[0].Root, st.Root)
			res, err := again.Put(ctx, randMsgs(r, scopeA, 10, 1e12)...)
			require.NoError(t, err)
			require.Len(t, res.Added, 10)
			require.NoError(t, again.Close())
			_, err = node.OpenStore(ctx, d, node.WithVerifyOnOpen(true))
			require.NoError(t, err)
		})
	}
}
