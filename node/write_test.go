package node_test

import (
	"context"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// countingDatastore counts batch commits and reads, to check what one
// Put costs.
type countingDatastore struct {
	ds.Batching
	commits, reads atomic.Int64
}

func (c *countingDatastore) Get(ctx context.Context, k ds.Key) ([]byte, error) {
	c.reads.Add(1)
	return c.Batching.Get(ctx, k)
}

func (c *countingDatastore) Has(ctx context.Context, k ds.Key) (bool, error) {
	c.reads.Add(1)
	return c.Batching.Has(ctx, k)
}

func (c *countingDatastore) Batch(ctx context.Context) (ds.Batch, error) {
	b, err := c.Batching.Batch(ctx)
	return countingBatch{b, c}, err
}

type countingBatch struct {
	ds.Batch
	c *countingDatastore
}

func (b countingBatch) Commit(ctx context.Context) error {
	b.c.commits.Add(1)
	return b.Batch.Commit(ctx)
}

// TestPutManyScopesOneBatch: a Put spread over many scopes commits once,
// and reads no record per message: the trees tell new from duplicate.
func TestPutManyScopesOneBatch(t *testing.T) {
	d := &countingDatastore{Batching: dssync.MutexWrap(ds.NewMapDatastore())}
	var scopes []reconcile.Scope
	for i := range 200 {
		scopes = append(scopes, reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/app/1/room-" + strings.Repeat("x", i%7) + hex.EncodeToString([]byte{byte(i)}) + "/proto"})
	}
	s := openWith(t, d, scopes)
	var msgs []reconcile.Message
	for i, sc := range scopes {
		msgs = append(msgs, msg(sc, int64(10+i), uint64(i)), msg(sc, int64(1000+i), uint64(i)))
	}
	// Warm the trees: the first write of each scope reads its empty root.
	commits, reads := d.commits.Load(), d.reads.Load()
	res, err := s.Put(t.Context(), msgs...)
	require.NoError(t, err)
	require.Len(t, res.Added, len(msgs))
	require.EqualValues(t, 1, d.commits.Load()-commits, "one batch for every scope")
	require.Less(t, d.reads.Load()-reads, int64(len(scopes)), "no read per message")

	// Again, with duplicates and new messages mixed: still one batch,
	// duplicates found without reading records.
	more := append([]reconcile.Message(nil), msgs[:100]...)
	for i, sc := range scopes {
		more = append(more, msg(sc, int64(2000+i), uint64(i)))
	}
	commits, reads = d.commits.Load(), d.reads.Load()
	res, err = s.Put(t.Context(), more...)
	require.NoError(t, err)
	require.Len(t, res.Added, len(scopes))
	require.Equal(t, 100, res.Duplicates)
	require.EqualValues(t, 1, d.commits.Load()-commits)
	require.Zero(t, d.reads.Load()-reads, "trees cached: nothing read")
	for _, sc := range scopes {
		st, _ := s.Stats(sc)
		require.EqualValues(t, 3, st.Count)
		require.Equal(t, int64(2000+indexOf(scopes, sc)), st.Newest)
	}
}

func indexOf(scopes []reconcile.Scope, sc reconcile.Scope) int {
	for i, s := range scopes {
		if s == sc {
			return i
		}
	}
	return -1
}

// TestPutManyScopesFailsAtomically: a failed commit of a multi-scope Put
// leaves every scope as it was.
func TestPutManyScopesFailsAtomically(t *testing.T) {
	d := &errDatastore{Batching: dssync.MutexWrap(ds.NewMapDatastore())}
	s := openWith(t, d, []reconcile.Scope{scopeA, scopeB})
	_, err := s.Put(t.Context(), msg(scopeA, 1, 1))
	require.NoError(t, err)
	a0, _ := s.Stats(scopeA)
	b0, _ := s.Stats(scopeB)
	d.fail = true
	_, err = s.Put(t.Context(), msg(scopeA, 2, 2), msg(scopeB, 3, 3))
	require.ErrorIs(t, err, errInjected)
	a1, _ := s.Stats(scopeA)
	b1, _ := s.Stats(scopeB)
	require.Equal(t, a0, a1)
	require.Equal(t, b0, b1)
	d.fail = false
	res, err := s.Put(t.Context(), msg(scopeA, 2, 2), msg(scopeB, 3, 3))
	require.NoError(t, err)
	require.Len(t, res.Added, 2)
}

// TestPutRefusesLargeMessages: a message over the maximum size is
// rejected with a reason, one at the maximum is stored, and the bound
// is configurable within what a transfer can carry.
func TestPutRefusesLargeMessages(t *testing.T) {
	s, _ := newMemStore(t, []reconcile.Scope{scopeA})
	base := msg(scopeA, 10, 1)
	base.Payload = nil
	overhead := base.Size()
	fits := base
	fits.Payload = make([]byte, reconcile.DefaultMaxMessageSize-overhead)
	for fits.Size() > reconcile.DefaultMaxMessageSize {
		fits.Payload = fits.Payload[:len(fits.Payload)-1]
	}
	require.Equal(t, reconcile.DefaultMaxMessageSize, fits.Size())
	big := fits
	big.Timestamp++
	big.Payload = append(append([]byte(nil), fits.Payload...), 1)

	res, err := s.Put(t.Context(), fits, big)
	require.NoError(t, err)
	require.Len(t, res.Added, 1)
	require.Len(t, res.Rejected, 1)
	require.Equal(t, 1, res.Rejected[0].Index)
	require.ErrorIs(t, res.Rejected[0].Err, node.ErrInvalidMessage)
	require.ErrorIs(t, res.Rejected[0].Err, reconcile.ErrMessageTooLarge)
	require.Contains(t, res.Rejected[0].Err.Error(), "at most 153600")

	small, _ := newMemStore(t, []reconcile.Scope{scopeA}, node.WithMaxMessageSize(100))
	res, err = small.Put(t.Context(), fits)
	require.NoError(t, err)
	require.Len(t, res.Rejected, 1)

	_, err = node.OpenStore(t.Context(), dssync.MutexWrap(ds.NewMapDatastore()), node.WithMaxMessageSize(node.MaxMessageSizeLimit+1))
	require.Error(t, err)
}

// TestPutRefusesMessagesAhead: a message timestamped more than the
// allowed skew ahead of the store's clock is rejected with the reason;
// one within it is stored, and the skew is configurable within bounds.
func TestPutRefusesMessagesAhead(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := node.WithNow(func() time.Time { return now })
	s, _ := newMemStore(t, []reconcile.Scope{scopeA}, clock)
	near := msg(scopeA, now.Add(reconcile.DefaultMaxClockSkew).UnixNano(), 1)
	far := msg(scopeA, now.Add(time.Minute).UnixNano(), 2)
	res, err := s.Put(t.Context(), near, far)
	require.NoError(t, err)
	require.Len(t, res.Added, 1)
	require.Len(t, res.Rejected, 1)
	require.Equal(t, 1, res.Rejected[0].Index)
	require.ErrorIs(t, res.Rejected[0].Err, node.ErrInvalidMessage)
	require.ErrorIs(t, res.Rejected[0].Err, reconcile.ErrTimestampAhead)

	lenient, _ := newMemStore(t, []reconcile.Scope{scopeA}, clock, node.WithMaxClockSkew(2*time.Minute))
	res, err = lenient.Put(t.Context(), far)
	require.NoError(t, err)
	require.Len(t, res.Added, 1)

	for _, d := range []time.Duration{0, -time.Second, node.MaxClockSkewLimit + 1} {
		_, err = node.OpenStore(t.Context(), dssync.MutexWrap(ds.NewMapDatastore()), node.WithMaxClockSkew(d))
		require.Error(t, err, "skew %v", d)
	}
}

// TestOpenUpgradesFormat1 writes a store in the layout of format 1
// (messages by hash, no format record) and opens it: the messages move to
// format 2, verified, and the store keeps working.
func TestOpenUpgradesFormat1(t *testing.T) {
	s, d := newMemStore(t, []reconcile.Scope{scopeA, scopeB})
	r := rand.New(rand.NewPCG(5, 6))
	msgs := append(randMsgs(r, scopeA, 2500, 1e12), randMsgs(r, scopeB, 300, 1e12)...)
	_, err := s.Put(t.Context(), msgs...)
	require.NoError(t, err)
	want := map[reconcile.Scope]node.ScopeStats{}
	for _, sc := range s.Scopes() {
		want[sc], _ = s.Stats(sc)
	}
	require.NoError(t, s.Close())

	// Back to format 1.
	for _, m := range msgs {
		b, err := d.Get(t.Context(), msgRecordKey(m))
		require.NoError(t, err)
		id := m.Scope().ID()
		require.NoError(t, d.Put(t.Context(), ds.NewKey("/storesync/msg/"+hex.EncodeToString(id[:])+"/"+m.Key().Hash.String()), b))
		require.NoError(t, d.Delete(t.Context(), msgRecordKey(m)))
	}
	require.NoError(t, d.Delete(t.Context(), ds.NewKey("/storesync/format")))

	s2, err := node.OpenStore(t.Context(), d, node.WithVerifyOnOpen(true))
	require.NoError(t, err)
	defer s2.Close()
	for sc, w := range want {
		st, _ := s2.Stats(sc)
		require.Equal(t, w.Count, st.Count)
		require.Equal(t, w.Root, st.Root)
	}
	got, err := s2.Get(t.Context(), scopeB, keysOf(msgs[len(msgs)-5:]))
	require.NoError(t, err)
	for i, m := range got {
		require.Equal(t, msgs[len(msgs)-5+i], *m)
	}
	res, err := d.Query(t.Context(), dsq.Query{Prefix: "/storesync/msg", KeysOnly: true})
	require.NoError(t, err)
	left, err := res.Rest()
	require.NoError(t, err)
	require.Empty(t, left, "nothing left in the old layout")
	v, err := d.Get(t.Context(), ds.NewKey("/storesync/format"))
	require.NoError(t, err)
	require.Equal(t, "2", string(v))

	// A format this version does not know is refused.
	require.NoError(t, d.Put(t.Context(), ds.NewKey("/storesync/format"), []byte("3")))
	_, err = node.OpenStore(t.Context(), d)
	require.ErrorContains(t, err, "store format 3")
}
