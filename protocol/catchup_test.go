package protocol_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-msgio/protoio"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// streamStore is a memStore that takes and serves catch-up streams: the
// protocol.CatchUpStore of these tests. Its commits are atomic under its
// mutex, which is all a test without crashes needs.
type streamStore struct {
	*memStore
	cmu     sync.Mutex
	cursors map[reconcile.Scope]map[reconcile.Key]protocol.Cursor
	// scans counts the Scan calls, puts the PutCatchUp calls; resumed
	// counts the scans that start after a message's key, not at a bound
	// cut between timestamps: the rest of a range another peer began.
	scans, puts, resumed int
	// dieAfter, when set, is called after each message a Scan serves;
	// an error from it ends the Scan.
	dieAfter func(served int) error
}

var _ protocol.CatchUpStore = (*streamStore)(nil)

func newStreamStore(t testing.TB, scopes ...reconcile.Scope) *streamStore {
	return &streamStore{memStore: newMemStore(t, scopes...), cursors: map[reconcile.Scope]map[reconcile.Key]protocol.Cursor{}}
}

func (s *streamStore) Scan(ctx context.Context, sc reconcile.Scope, after, until reconcile.Key, fn func(reconcile.Key, []byte) error) error {
	s.cmu.Lock()
	s.scans++
	if after.Hash != (reconcile.Hash{}) {
		s.resumed++
	}
	s.cmu.Unlock()
	var keys []reconcile.Key
	if err := s.trees[sc].Iterate(ctx, after, until, func(k reconcile.Key) error {
		if k != after {
			keys = append(keys, k)
		}
		return nil
	}); err != nil {
		return err
	}
	for i, k := range keys {
		s.mu.Lock()
		m := s.msgs[k.Hash]
		s.mu.Unlock()
		raw, err := m.ToPB().Marshal()
		if err != nil {
			return err
		}
		if err := fn(k, raw); err != nil {
			return err
		}
		if s.dieAfter != nil {
			if err := s.dieAfter(i + 1); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *streamStore) PutCatchUp(ctx context.Context, sc reconcile.Scope, msgs []reconcile.Message, _ []reconcile.Key, curs ...protocol.Cursor) (int, error) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.puts++
	n, err := s.Put(ctx, msgs)
	if err != nil {
		return n, err
	}
	m := s.cursors[sc]
	if m == nil {
		m = map[reconcile.Key]protocol.Cursor{}
		s.cursors[sc] = m
	}
	for _, c := range curs {
		if c.Done {
			delete(m, c.Hi)
		} else {
			m[c.Hi] = c
		}
	}
	return n, nil
}

func (s *streamStore) Cursors(_ context.Context, sc reconcile.Scope) ([]protocol.Cursor, error) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	var out []protocol.Cursor
	for _, c := range s.cursors[sc] {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b protocol.Cursor) int { return a.Hi.Compare(b.Hi) })
	return out, nil
}

// streamNode is a node over a streamStore.
type streamNode struct {
	*node
	ss *streamStore
}

func newStreamNode(t testing.TB, scopes []reconcile.Scope, opts ...protocol.Option) *streamNode {
	h := newHost(t)
	st := newStreamStore(t, scopes...)
	svc, err := protocol.New(h, st, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { svc.Close() })
	return &streamNode{node: &node{h: h, svc: svc, store: st.memStore}, ss: st}
}

// fillScope puts n messages of sc, a second apart, into some nodes.
func fillScope(t testing.TB, sc reconcile.Scope, n int, nodes ...*node) []reconcile.Message {
	msgs := make([]reconcile.Message, n)
	for i := range msgs {
		msgs[i] = msg(sc, t0+int64(i)*1e9)
	}
	for _, nd := range nodes {
		nd.put(t, msgs...)
	}
	return msgs
}

// small makes batches of at most 64 KiB, so that a few thousand messages
// take many of them.
var small = []protocol.Option{protocol.WithBatchLimits(1024, 64<<10), protocol.WithMaxMessageSize(4096)}

// TestSyncStreamsEmptyScope: an empty client streams the scope in many
// batches, each stored with its cursor, and the final session finds
// nothing left: the roots are equal.
func TestSyncStreamsEmptyScope(t *testing.T) {
	a := newStreamNode(t, []reconcile.Scope{chat}, small...)
	b := newStreamNode(t, []reconcile.Scope{chat}, small...)
	connect(t, a.h, b.h)
	fillScope(t, chat, 6000, b.node)
	rep, err := a.svc.Sync(t.Context(), b.h.ID(), chat)
	require.NoError(t, err)
	require.NoError(t, rep.Err())
	sr := rep.Scopes[0]
	require.Equal(t, 6000, sr.Streamed)
	require.Equal(t, 6000, sr.Received)
	require.Zero(t, sr.Need)
	require.Equal(t, b.store.root(chat), a.store.root(chat))
	require.Greater(t, a.ss.puts, 3, "many batches")
	curs, err := a.ss.Cursors(t.Context(), chat)
	require.NoError(t, err)
	require.Empty(t, curs, "a finished range leaves no cursor")
}

// TestCatchUpResumesFromCursor: a saved cursor makes the next catch-up
// ask for the rest of its range only.
func TestCatchUpResumesFromCursor(t *testing.T) {
	a := newStreamNode(t, []reconcile.Scope{chat}, small...)
	b := newStreamNode(t, []reconcile.Scope{chat}, small...)
	connect(t, a.h, b.h)
	msgs := fillScope(t, chat, 2000, b.node)
	// As if a catch-up had stored the first 1,200 and stopped.
	done := msgs[1199].Key()
	_, err := a.ss.PutCatchUp(t.Context(), chat, msgs[:1200], nil, protocol.Cursor{Peer: b.h.ID(), Lo: reconcile.Key{}, Hi: reconcile.End, After: done})
	require.NoError(t, err)

	rep, err := a.svc.Sync(t.Context(), b.h.ID(), chat)
	require.NoError(t, err)
	require.NoError(t, rep.Err())
	require.Equal(t, 800, rep.Scopes[0].Streamed, "only the rest of the range")
	require.Equal(t, 800, rep.Scopes[0].Received)
	require.Equal(t, b.store.root(chat), a.store.root(chat))
	curs, _ := a.ss.Cursors(t.Context(), chat)
	require.Empty(t, curs)
}

// TestFarBehindIsStreamed: a client holding a twentieth of the scope
// learns the server's count from its first reply, leaves the session,
// streams the scope and reconciles it again; one holding most of it
// just reconciles.
func TestFarBehindIsStreamed(t *testing.T) {
	opts := append([]protocol.Option{protocol.WithCatchUp(2, 100)}, small...)
	a := newStreamNode(t, []reconcile.Scope{chat}, opts...)
	b := newStreamNode(t, []reconcile.Scope{chat}, opts...)
	connect(t, a.h, b.h)
	msgs := fillScope(t, chat, 4000, b.node)
	for i := 0; i < len(msgs); i += 20 {
		a.put(t, msgs[i])
	}
	rep, err := a.svc.Sync(t.Context(), b.h.ID(), chat)
	require.NoError(t, err)
	require.NoError(t, rep.Err())
	require.Equal(t, 4000, rep.Scopes[0].Streamed)
	require.Equal(t, 3800, rep.Scopes[0].Received)
	require.Equal(t, b.store.root(chat), a.store.root(chat))

	c := newStreamNode(t, []reconcile.Scope{chat}, opts...)
	connect(t, c.h, b.h)
	c.put(t, msgs[:3000]...)
	rep, err = c.svc.Sync(t.Context(), b.h.ID(), chat)
	require.NoError(t, err)
	require.Zero(t, rep.Scopes[0].Streamed)
	require.Equal(t, 1000, rep.Scopes[0].Received)
}

// TestCatchUpFromSeveralPeers: three peers share the ranges of an empty
// client's catch-up; one of them goes away mid-range, and the others
// take its remainder.
func TestCatchUpFromSeveralPeers(t *testing.T) {
	client := newStreamNode(t, []reconcile.Scope{chat}, small...)
	var peers []*streamNode
	for range 3 {
		p := newStreamNode(t, []reconcile.Scope{chat}, small...)
		connect(t, client.h, p.h)
		peers = append(peers, p)
	}
	nodes := []*node{peers[0].node, peers[1].node, peers[2].node}
	fillScope(t, chat, 20_000, nodes...)
	// Peer 2 dies in the middle of the first range it serves: once the
	// client has stored a batch of it, its host goes away.
	victim := peers[2]
	stored := make(chan struct{})
	var once, died sync.Once
	victim.ss.dieAfter = func(served int) error {
		if served < 1500 { // past the first batch of 64 KiB: ~1,100 bare messages
			return nil
		}
		select {
		case <-stored:
		case <-time.After(10 * time.Second):
		}
		died.Do(func() { go victim.h.Close() })
		return errors.New("killed")
	}
	ctx := protocol.WithProgress(t.Context(), func(p protocol.Progress) {
		if p.Peer == victim.h.ID() {
			once.Do(func() { close(stored) })
		}
	})
	rep, err := client.svc.CatchUp(ctx, chat, peers[0].h.ID(), peers[1].h.ID(), victim.h.ID())
	require.NoError(t, err)
	require.NoError(t, rep.Err)
	require.Equal(t, peers[0].store.root(chat), client.store.root(chat))
	require.Equal(t, 20_000, rep.Received)
	var served, resumed []int
	for _, p := range peers {
		p.ss.cmu.Lock()
		served, resumed = append(served, p.ss.scans), append(resumed, p.ss.resumed)
		p.ss.cmu.Unlock()
	}
	require.Positive(t, served[0], "every live peer served ranges: %v", served)
	require.Positive(t, served[1], "every live peer served ranges: %v", served)
	require.Positive(t, resumed[0]+resumed[1], "a live peer finished the dead one's range")
	curs, _ := client.ss.Cursors(t.Context(), chat)
	require.Empty(t, curs)
}

// hostileCatchUp mounts a catch-up handler on a bare host that answers
// any request with the header and batches given.
func hostileCatchUp(t *testing.T, victim *streamNode, h *pb.CatchUpHeader, batches ...*pb.CatchUpBatch) *node {
	evil := newNode(t, []reconcile.Scope{chat})
	evil.h.SetStreamHandler(protocol.CatchUpID, func(s network.Stream) {
		defer s.Close()
		var req pb.CatchUpRequest
		if protoio.NewDelimitedReader(s, 1<<20).ReadMsg(&req) != nil {
			return
		}
		w := protoio.NewDelimitedWriter(s)
		_ = w.WriteMsg(h)
		for _, b := range batches {
			_ = w.WriteMsg(b)
		}
	})
	connect(t, victim.h, evil.h)
	return evil
}

func batchOf(msgs ...reconcile.Message) *pb.CatchUpBatch {
	b := &pb.MessageBatch{}
	for i := range msgs {
		b.Messages = append(b.Messages, msgs[i].ToPB())
	}
	return &pb.CatchUpBatch{Batch: b}
}

// TestCatchUpRejectsHostileStreams: a server that sends keys out of
// order breaks the protocol and the catch-up stops with nothing of the
// batch stored; messages of another scope, too large or timestamped too
// far ahead are dropped and counted against it, the good ones of the
// batch kept.
func TestCatchUpRejectsHostileStreams(t *testing.T) {
	m1, m2, m3 := msg(chat, t0+1), msg(chat, t0+2), msg(chat, t0+3)
	t.Run("out of order", func(t *testing.T) {
		victim := newStreamNode(t, []reconcile.Scope{chat})
		evil := hostileCatchUp(t, victim, &pb.CatchUpHeader{Count: 3}, batchOf(m2, m1, m3))
		_, err := victim.svc.CatchUp(t.Context(), chat, evil.h.ID())
		require.ErrorIs(t, err, protocol.ErrBadRequest)
		require.Empty(t, victim.store.hashes(chat))
	})
	t.Run("repeated", func(t *testing.T) {
		victim := newStreamNode(t, []reconcile.Scope{chat})
		first := batchOf(m1, m2)
		evil := hostileCatchUp(t, victim, &pb.CatchUpHeader{Count: 3}, first, batchOf(m2, m3))
		_, err := victim.svc.CatchUp(t.Context(), chat, evil.h.ID())
		require.ErrorIs(t, err, protocol.ErrBadRequest)
		require.Len(t, victim.store.hashes(chat), 2, "the first, good batch is kept")
	})
	t.Run("bad messages", func(t *testing.T) {
		victim := newStreamNode(t, []reconcile.Scope{chat}, protocol.WithMaxMessageSize(1000))
		other := msg(files, t0+2)
		big := msg(chat, t0+3)
		big.Payload = make([]byte, 2000)
		// A minute ahead of the clock, past the 20 s allowed.
		ahead := msg(chat, time.Now().Add(time.Minute).UnixNano())
		done := batchOf(m1, other, big, ahead)
		done.Done = true
		evil := hostileCatchUp(t, victim, &pb.CatchUpHeader{Count: 4}, done)
		rep, err := victim.svc.CatchUp(t.Context(), chat, evil.h.ID())
		require.NoError(t, err)
		require.Equal(t, 3, rep.Rejected)
		require.Equal(t, map[reconcile.Hash]bool{m1.Hash(): true}, victim.store.hashes(chat))
		strikes, _ := victim.svc.Strikes(evil.h.ID())
		require.Equal(t, 3, strikes)
	})
	t.Run("bare messages", func(t *testing.T) {
		// Without both topics a message is the scope's (accept_bare);
		// with only one, it is of no scope this client asked for.
		victim := newStreamNode(t, []reconcile.Scope{chat})
		done := batchOf(m1, m2, m3)
		done.Done = true
		done.Batch.Messages[0].PubsubTopic, done.Batch.Messages[0].ContentTopic = "", ""
		done.Batch.Messages[1].PubsubTopic = ""
		evil := hostileCatchUp(t, victim, &pb.CatchUpHeader{Count: 3}, done)
		rep, err := victim.svc.CatchUp(t.Context(), chat, evil.h.ID())
		require.NoError(t, err)
		require.Equal(t, 1, rep.Rejected)
		require.Equal(t, map[reconcile.Hash]bool{m1.Hash(): true, m3.Hash(): true}, victim.store.hashes(chat))
	})
	t.Run("empty batches", func(t *testing.T) {
		victim := newStreamNode(t, []reconcile.Scope{chat})
		evil := hostileCatchUp(t, victim, &pb.CatchUpHeader{Count: 3}, &pb.CatchUpBatch{}, &pb.CatchUpBatch{})
		_, err := victim.svc.CatchUp(t.Context(), chat, evil.h.ID())
		require.ErrorIs(t, err, protocol.ErrBadRequest)
	})
	t.Run("no progress", func(t *testing.T) {
		victim := newStreamNode(t, []reconcile.Scope{chat})
		evil := hostileCatchUp(t, victim, &pb.CatchUpHeader{Count: 3})
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		_, err := victim.svc.CatchUp(ctx, chat, evil.h.ID())
		require.Error(t, err)
		require.NoError(t, ctx.Err(), "a stream that ends without a batch is not asked again and again")
	})
}

// TestCatchUpServerRefusesMalformedRequests: a request that breaks the
// protocol gets an error code, and the server keeps serving.
func TestCatchUpServerRefusesMalformedRequests(t *testing.T) {
	server := newStreamNode(t, []reconcile.Scope{chat})
	fillScope(t, chat, 10, server.node)
	id := chat.ID()
	for _, req := range []*pb.CatchUpRequest{
		{Scope: id[:4]},
		{Scope: id[:], After: make([]byte, 7)},
		{Scope: id[:], After: reconcile.End.Bytes(), Until: reconcile.TimeBound(5).Bytes()},
	} {
		// A host per request: the server releases a refused stream's
		// session slot after the client has read the refusal, so one
		// peer asking in quick succession could meet its own limit.
		h := newHost(t)
		connect(t, h, server.h)
		s, err := h.NewStream(t.Context(), server.h.ID(), protocol.CatchUpID)
		require.NoError(t, err)
		require.NoError(t, protoio.NewDelimitedWriter(s).WriteMsg(req))
		var b pb.CatchUpBatch
		require.NoError(t, protoio.NewDelimitedReader(s, 1<<20).ReadMsg(&b))
		require.NotNil(t, b.Error)
		require.Equal(t, pb.Code_BAD_REQUEST, b.Error.Code)
		_ = s.Reset()
	}
	client := newStreamNode(t, []reconcile.Scope{chat})
	connect(t, client.h, server.h)
	rep, err := client.svc.Sync(t.Context(), server.h.ID(), chat)
	require.NoError(t, err)
	require.Equal(t, 10, rep.Scopes[0].Streamed)
}
