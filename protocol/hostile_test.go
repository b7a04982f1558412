package protocol_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-msgio/protoio"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// rawStream opens a stream from a bare host to the victim's sync
// handler, for playing a hostile client.
func rawStream(t *testing.T, victim *node) network.Stream {
	h := newHost(t)
	connect(t, h, victim.h)
	s, err := h.NewStream(t.Context(), victim.h.ID(), protocol.SyncID)
	require.NoError(t, err)
	t.Cleanup(func() { s.Reset() })
	return s
}

// readError reads the error frame a server sends before resetting.
func readError(t *testing.T, s network.Stream) pb.Code {
	t.Helper()
	require.NoError(t, s.SetReadDeadline(time.Now().Add(5*time.Second)))
	var f pb.SyncFrame
	require.NoError(t, protoio.NewDelimitedReader(s, 1<<20).ReadMsg(&f))
	require.True(t, f.EndOfTurn)
	require.NotNil(t, f.Error)
	return f.Error.Code
}

// requireStillServes checks that an honest peer can sync with victim.
func requireStillServes(t *testing.T, victim *node) {
	t.Helper()
	honest := newNode(t, []reconcile.Scope{chat})
	connect(t, honest.h, victim.h)
	victim.put(t, msg(chat, t0+99))
	rep, err := honest.svc.Sync(t.Context(), victim.h.ID(), chat)
	require.NoError(t, err)
	require.NoError(t, rep.Err())
	require.Equal(t, victim.store.hashes(chat), honest.store.hashes(chat))
}

func TestOversizedFrameIsRefused(t *testing.T) {
	victim := newNode(t, []reconcile.Scope{chat})
	s := rawStream(t, victim)
	w := bufio.NewWriter(s)
	_, _ = w.Write(binary.AppendUvarint(nil, 64<<20))
	_, _ = w.Write(make([]byte, 4096))
	require.NoError(t, w.Flush())
	require.Equal(t, pb.Code_TOO_LARGE, readError(t, s))
	require.Empty(t, victim.store.hashes(chat))
	requireStillServes(t, victim)
}

func TestGarbageIsRefused(t *testing.T) {
	victim := newNode(t, []reconcile.Scope{chat})
	s := rawStream(t, victim)
	junk := []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3}
	_, err := s.Write(append(binary.AppendUvarint(nil, uint64(len(junk))), junk...))
	require.NoError(t, err)
	require.Equal(t, pb.Code_BAD_REQUEST, readError(t, s))
	requireStillServes(t, victim)
}

// TestMalformedReconcileFrameIsRefused sends a well-formed request whose
// reconciliation frame breaks the rules (a fingerprint of the wrong size).
func TestMalformedReconcileFrameIsRefused(t *testing.T) {
	victim := newNode(t, []reconcile.Scope{chat})
	s := rawStream(t, victim)
	id := chat.ID()
	req := &pb.SyncRequest{Scopes: []*pb.ScopeOpen{{Scope: id[:], First: &pb.ReconcileFrame{
		Items: []*pb.RangeItem{{Mode: pb.Mode_FINGERPRINT, Fingerprint: []byte{1, 2, 3}}}}}}}
	require.NoError(t, protoio.NewDelimitedWriter(s).WriteMsg(req))
	require.Equal(t, pb.Code_BAD_REQUEST, readError(t, s))
	requireStillServes(t, victim)
}

func TestStalledClientTimesOut(t *testing.T) {
	victim := newNode(t, []reconcile.Scope{chat}, protocol.WithTimeouts(5*time.Second, 200*time.Millisecond))
	s := rawStream(t, victim)
	require.Equal(t, pb.Code_TIMEOUT, readError(t, s))
}

// TestTooManySessions: a peer holding its one allowed session open gets
// ErrTooManySessions for a second one, while another peer is served.
func TestTooManySessions(t *testing.T) {
	victim := newNode(t, []reconcile.Scope{chat}, protocol.WithSessionLimits(1, 8))
	greedy := newNode(t, []reconcile.Scope{chat})
	connect(t, greedy.h, victim.h)
	held, err := greedy.h.NewStream(t.Context(), victim.h.ID(), protocol.SyncID)
	require.NoError(t, err)
	defer held.Reset()
	// Hold a live session: open it properly, read the server's first
	// turn, then stall without answering.
	sess, err := reconcile.NewSession(reconcile.NewSliceSet(nil), reconcile.Key{}, reconcile.End, reconcile.DefaultParams())
	require.NoError(t, err)
	first, err := sess.Start(t.Context())
	require.NoError(t, err)
	id := chat.ID()
	require.NoError(t, protoio.NewDelimitedWriter(held).WriteMsg(&pb.SyncRequest{Scopes: []*pb.ScopeOpen{{Scope: id[:], First: first[0]}}}))
	var reply pb.SyncFrame
	require.NoError(t, protoio.NewDelimitedReader(held, 1<<20).ReadMsg(&reply))

	_, err = greedy.svc.Sync(t.Context(), victim.h.ID(), chat)
	require.ErrorIs(t, err, protocol.ErrTooManySessions)
	requireStillServes(t, victim)
}

// forgingStore serves, for some keys, messages other than the ones
// stored: what a hostile peer sends when asked for a batch.
type forgingStore struct {
	*memStore
	forged map[reconcile.Hash]reconcile.Message
}

func (f *forgingStore) Get(ctx context.Context, sc reconcile.Scope, keys []reconcile.Key) ([]*reconcile.Message, error) {
	out, err := f.memStore.Get(ctx, sc, keys)
	for i, k := range keys {
		if m, ok := f.forged[k.Hash]; ok {
			out[i] = &m
		}
	}
	return out, err
}

// TestForgedMessagesAreDropped: a peer answers a fetch with a message
// whose content does not hash to the hash asked for, one of another scope
// and one that is not a valid message; they are dropped and counted
// against the peer, and the good messages of the same batch are kept.
func TestForgedMessagesAreDropped(t *testing.T) {
	a := newNode(t, []reconcile.Scope{chat})
	hh := newHost(t)
	fs := &forgingStore{memStore: newMemStore(t, chat, files), forged: map[reconcile.Hash]reconcile.Message{}}
	svc, err := protocol.New(hh, fs)
	require.NoError(t, err)
	t.Cleanup(func() { svc.Close() })
	connect(t, a.h, hh)

	var good []reconcile.Message
	for i := range 5 {
		good = append(good, msg(chat, t0+int64(i)))
	}
	_, err = fs.Put(t.Context(), good)
	require.NoError(t, err)
	// Three forgeries, each announced in the chat tree under the hash of
	// a message that was never stored.
	other := msg(files, t0+10)
	invalid := msg(chat, 0)
	for i, forged := range []reconcile.Message{msg(chat, t0+20), other, invalid} {
		claimed := msg(chat, t0+30+int64(i))
		h := claimed.Hash()
		if i > 0 {
			// The claimed hash is the forged message's own: only its
			// scope, or its validity, gives it away.
			h = forged.Hash()
		}
		_, _, err := fs.trees[chat].Apply(t.Context(), []reconcile.Key{{TS: uint64(claimed.Timestamp), Hash: h}}, nil)
		require.NoError(t, err)
		fs.forged[h] = forged
	}
	rep, err := a.svc.Sync(t.Context(), hh.ID(), chat)
	require.NoError(t, err)
	require.Equal(t, 5, rep.Scopes[0].Received)
	require.Equal(t, 3, rep.Scopes[0].Rejected)
	stored := a.store.hashes(chat)
	require.Len(t, stored, 5)
	for _, m := range good {
		require.True(t, stored[m.Hash()])
	}
	n, _ := a.svc.Strikes(hh.ID())
	require.Equal(t, 3, n)
}

// TestRepeatOffenderIsRefused: once a peer has sent too many bad
// messages, syncing with it is refused at once.
func TestRepeatOffenderIsRefused(t *testing.T) {
	a := newNode(t, []reconcile.Scope{chat}, protocol.WithStrikes(2, time.Hour))
	hh := newHost(t)
	fs := &forgingStore{memStore: newMemStore(t, chat), forged: map[reconcile.Hash]reconcile.Message{}}
	svc, err := protocol.New(hh, fs)
	require.NoError(t, err)
	t.Cleanup(func() { svc.Close() })
	connect(t, a.h, hh)
	for i := range 3 {
		claimed, forged := msg(chat, t0+int64(i)), msg(chat, t0+int64(i))
		_, _, err := fs.trees[chat].Apply(t.Context(), []reconcile.Key{claimed.Key()}, nil)
		require.NoError(t, err)
		fs.forged[claimed.Hash()] = forged
	}
	_, err = a.svc.Sync(t.Context(), hh.ID(), chat)
	require.ErrorIs(t, err, protocol.ErrRefused)
	_, err = a.svc.Sync(t.Context(), hh.ID(), chat)
	require.ErrorIs(t, err, protocol.ErrRefused)
	require.Empty(t, a.store.hashes(chat))
}

// TestEndlessTurnsAreCut: a client that asks about the whole scope again
// and again, each turn making the server read it, has its session ended
// with TOO_LARGE after twice the turns an honest session may take, and
// the server goes on serving others.
func TestEndlessTurnsAreCut(t *testing.T) {
	victim := newNode(t, []reconcile.Scope{chat})
	fillScope(t, chat, 200, victim)
	s := rawStream(t, victim)
	require.NoError(t, s.SetDeadline(time.Now().Add(20*time.Second)))
	id := chat.ID()
	// A fingerprint of the whole range that matches nothing: the server
	// answers it by splitting the range, every time.
	ask := &pb.ReconcileFrame{Items: []*pb.RangeItem{{Mode: pb.Mode_FINGERPRINT, Fingerprint: make([]byte, 16), Count: 5}}}
	w := protoio.NewDelimitedWriter(s)
	r := protoio.NewDelimitedReader(s, 4<<20)
	require.NoError(t, w.WriteMsg(&pb.SyncRequest{Scopes: []*pb.ScopeOpen{{Scope: id[:], First: ask}}}))
	turns := 0
	for ; turns < 1000; turns++ {
		if code := readServerTurn(t, r); code != pb.Code_OK {
			require.Equal(t, pb.Code_TOO_LARGE, code)
			break
		}
		require.NoError(t, w.WriteMsg(&pb.SyncFrame{Scope: 0, Frame: ask}))
		require.NoError(t, w.WriteMsg(&pb.SyncFrame{EndOfTurn: true}))
	}
	require.Equal(t, reconcile.DefaultParams().MaxMessages+1, turns, "the session ends after its turn limit")
	requireStillServes(t, victim)
}

// TestSessionRateIsBounded: a peer that opens sessions in a loop gets
// BUSY once it has started its minute's worth, and gets it only after
// half a second, so that asking again at once does not pay; another peer
// is served meanwhile; a minute later the first is served again.
func TestSessionRateIsBounded(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(2_000_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	victim := newNode(t, []reconcile.Scope{chat}, protocol.WithRates(5, 100, 5), protocol.WithNow(clock))
	victim.put(t, msg(chat, t0+1))
	greedy := newNode(t, []reconcile.Scope{chat})
	connect(t, greedy.h, victim.h)
	session := func(n *node) error {
		rep, err := n.svc.Sync(t.Context(), victim.h.ID(), chat)
		if err == nil {
			err = rep.Err()
		}
		return err
	}
	for i := range 5 {
		require.NoError(t, session(greedy), "session %d is within the rate", i)
	}
	start := time.Now()
	require.ErrorIs(t, session(greedy), protocol.ErrBusy)
	require.GreaterOrEqual(t, time.Since(start), 500*time.Millisecond, "the refusal waits")
	requireStillServes(t, victim)
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	require.NoError(t, session(greedy))
}

// TestOversizedMessageIsRefusedAsItArrives: a client that streams frames
// of one message that never ends (each says more follows) is refused
// with TOO_LARGE once the message passes what any message within the
// server's limits can take, long before the turn's frame cap: the
// server's memory for a turn is bounded by its limits, not by the frames
// a client sends.
func TestOversizedMessageIsRefusedAsItArrives(t *testing.T) {
	p := reconcile.DefaultParams()
	p.FrameSize = 64 << 10
	p.Limits = reconcile.Limits{MaxItems: 1024, MaxCells: 4096, MaxIDs: 4096}
	victim := newNode(t, []reconcile.Scope{chat}, protocol.WithReconcileParams(p))
	require.Equal(t, pb.Code_TOO_LARGE, endlessMessage(t, victim, 4*p.Limits.MaxMessageBytes(1<<16)))
	requireStillServes(t, victim)
}

// endlessMessage opens a session with victim, then streams frames of a
// message that never ends, up to send bytes, and returns the code of the
// server's reply.
func endlessMessage(t *testing.T, victim *node, send int64) pb.Code {
	s := rawStream(t, victim)
	require.NoError(t, s.SetDeadline(time.Now().Add(20*time.Second)))
	id := chat.ID()
	w := protoio.NewDelimitedWriter(s)
	first := &pb.ReconcileFrame{Items: []*pb.RangeItem{{Mode: pb.Mode_FINGERPRINT, Fingerprint: make([]byte, 16), Count: 5}}}
	require.NoError(t, w.WriteMsg(&pb.SyncRequest{Scopes: []*pb.ScopeOpen{{Scope: id[:], First: first}}}))
	r := protoio.NewDelimitedReader(s, 4<<20)
	require.Equal(t, pb.Code_OK, readServerTurn(t, r), "the server's first turn")
	chunk := &pb.SyncFrame{Scope: 0, Frame: &pb.ReconcileFrame{More: true,
		Items: []*pb.RangeItem{{Mode: pb.Mode_SKIP, Ids: make([]byte, 60<<10)}}}}
	go func() {
		for sent := int64(0); sent < send; sent += int64(chunk.Size()) {
			if w.WriteMsg(chunk) != nil {
				return
			}
		}
	}()
	return readServerTurn(t, r)
}

// readServerTurn reads a server's turn to its end and returns the code
// of the error it carried, pb.Code_OK if none.
func readServerTurn(t *testing.T, r protoio.ReadCloser) pb.Code {
	t.Helper()
	code := pb.Code_OK
	for {
		var f pb.SyncFrame
		require.NoError(t, r.ReadMsg(&f))
		if f.Error != nil {
			code = f.Error.Code
		}
		if f.EndOfTurn {
			return code
		}
	}
}

// TestTurnMemoryIsReservedAsItArrives: the frames of a client's turn are
// reserved from the stream's resource scope as they arrive. A turn far
// within the reconciliation limits but past what the resource manager
// lets one stream hold is refused with TOO_LARGE before the stream's
// limit is reached, and the memory goes back when the session ends.
func TestTurnMemoryIsReservedAsItArrives(t *testing.T) {
	const streamMemory = 8 << 20
	limits := rcmgr.PartialLimitConfig{Stream: rcmgr.ResourceLimits{Memory: rcmgr.LimitVal64(streamMemory)}}
	mgr, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.Build(rcmgr.DefaultLimits.AutoScale())))
	require.NoError(t, err)
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.ResourceManager(mgr))
	require.NoError(t, err)
	t.Cleanup(func() { h.Close() })
	st := newMemStore(t, chat)
	svc, err := protocol.New(h, st)
	require.NoError(t, err)
	t.Cleanup(func() { svc.Close() })
	victim := &node{h: h, svc: svc, store: st}

	serviceMemory := func() int64 {
		var n int64
		require.NoError(t, mgr.ViewService(protocol.ServiceName, func(s network.ServiceScope) error {
			n = s.Stat().Memory
			return nil
		}))
		return n
	}
	const send = 4 * streamMemory
	require.Less(t, int64(send), reconcile.DefaultParams().Limits.MaxMessageBytes(1<<16),
		"the turn is within the reconciliation limits: only its memory refuses it")
	require.Equal(t, pb.Code_TOO_LARGE, endlessMessage(t, victim, send))
	require.Eventually(t, func() bool { return serviceMemory() == 0 }, 5*time.Second, 10*time.Millisecond,
		"the session's memory is given back")
	requireStillServes(t, victim)
}

// TestSyncSplitsASessionTooLargeForTheStream: a session over 160 scopes
// that each differ by more than one item of a reply may carry (half a
// frame of 64 KiB) makes the server's turn (5 MiB) pass what the client's
// resource manager lets a stream hold (4 MiB). The client refuses that turn as it arrives, splits the
// scopes into smaller sessions, and every scope converges.
func TestSyncSplitsASessionTooLargeForTheStream(t *testing.T) {
	p := reconcile.DefaultParams()
	p.FrameSize = 64 << 10
	opts := []protocol.Option{protocol.WithReconcileParams(p), protocol.WithCatchUp(0, 0)}
	var scopes []reconcile.Scope
	for i := range 160 {
		scopes = append(scopes, reconcile.Scope{PubsubTopic: chat.PubsubTopic, ContentTopic: fmt.Sprintf("/app/1/s%d/proto", i)})
	}
	server := newNode(t, scopes, opts...)
	limits := rcmgr.PartialLimitConfig{Stream: rcmgr.ResourceLimits{Memory: rcmgr.LimitVal64(4 << 20)}}
	mgr, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.Build(rcmgr.DefaultLimits.AutoScale())))
	require.NoError(t, err)
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.ResourceManager(mgr))
	require.NoError(t, err)
	t.Cleanup(func() { h.Close() })
	st := newMemStore(t, scopes...)
	svc, err := protocol.New(h, st, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { svc.Close() })
	client := &node{h: h, svc: svc, store: st}
	connect(t, client.h, server.h)
	for _, sc := range scopes {
		var ms []reconcile.Message
		for j := range 1000 {
			ms = append(ms, msg(sc, t0+int64(j)))
		}
		server.put(t, ms...)
		client.put(t, ms[:50]...)
	}
	rep, err := client.svc.Sync(t.Context(), server.h.ID(), scopes...)
	require.NoError(t, err)
	require.NoError(t, rep.Err())
	for _, sc := range scopes {
		require.Equal(t, server.store.hashes(sc), client.store.hashes(sc), "scope %v", sc)
	}
}
