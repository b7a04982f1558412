package node_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// gatedDatastore holds the commit of a flush's batch (the one batch that
// deletes journal records) while armed: it reports the flush on entered,
// waits for a value on release and, when that is an error, fails the
// commit with it instead of applying the batch.
type gatedDatastore struct {
	ds.Batching
	armed   atomic.Bool
	entered chan struct{}
	release chan error
}

type gatedBatch struct {
	ds.Batch
	d     *gatedDatastore
	flush bool
}

func (d *gatedDatastore) Batch(ctx context.Context) (ds.Batch, error) {
	b, err := d.Batching.Batch(ctx)
	return &gatedBatch{Batch: b, d: d}, err
}

func (b *gatedBatch) Delete(ctx context.Context, k ds.Key) error {
	b.flush = b.flush || strings.HasPrefix(k.String(), journalPrefix+"/")
	return b.Batch.Delete(ctx, k)
}

func (b *gatedBatch) Commit(ctx context.Context) error {
	if b.flush && b.d.armed.CompareAndSwap(true, false) {
		b.d.entered <- struct{}{}
		if err := <-b.d.release; err != nil {
			return err
		}
	}
	return b.Batch.Commit(ctx)
}

// TestCommitsGoOnDuringAFlush: while a flush writes a scope's tree, Puts
// to the scope commit, find the keys being flushed as duplicates, and
// count; once it ends, the tree, the counts and a verified reopen agree
// on every message. A flush that fails gives its keys back, and the next
// one writes them with those committed meanwhile.
func TestCommitsGoOnDuringAFlush(t *testing.T) {
	for _, fail := range []bool{false, true} {
		name := map[bool]string{false: "flush succeeds", true: "flush fails"}[fail]
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			d := &gatedDatastore{Batching: dssync.MutexWrap(ds.NewMapDatastore()),
				entered: make(chan struct{}), release: make(chan error)}
			s, err := node.OpenStore(ctx, d, neverFlush)
			require.NoError(t, err)
			require.NoError(t, s.AddScope(ctx, scopeA))
			var msgs []reconcile.Message
			for i := range 150 {
				msgs = append(msgs, msg(scopeA, int64(i+1), uint64(i)))
			}
			_, err = s.Put(ctx, msgs[:100]...)
			require.NoError(t, err)

			d.armed.Store(true)
			flushed := make(chan struct{})
			go func() {
				defer close(flushed)
				s.Tree(scopeA) // flushes first
			}()
			<-d.entered
			var res node.PutResult
			put := make(chan error, 1)
			go func() {
				var err error
				res, err = s.Put(ctx, msgs[50:150]...)
				put <- err
			}()
			select {
			case err := <-put:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("a Put waits for the flush of keys it need not look up")
			}
			require.Equal(t, 50, res.Duplicates, "the keys being flushed are stored already")
			require.Len(t, res.Added, 50)
			st, _ := s.Stats(scopeA)
			require.EqualValues(t, 150, st.Count)
			if fail {
				d.release <- errInjected
			} else {
				d.release <- nil
			}
			<-flushed

			res, err = s.Put(ctx, msgs...)
			require.NoError(t, err)
			require.Equal(t, 150, res.Duplicates, "nothing is stored twice, flushed or not")
			require.Equal(t, sortedKeys(msgs), treeKeys(t, s, scopeA))
			tr, _ := s.Tree(scopeA)
			st, _ = s.Stats(scopeA)
			require.Equal(t, st.Root, tr.Root().Fingerprint())
			require.NoError(t, s.Close())

			again := openWith(t, d, nil, node.WithVerifyOnOpen(true))
			require.Equal(t, sortedKeys(msgs), treeKeys(t, again, scopeA))
		})
	}
}
