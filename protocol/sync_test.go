package protocol_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

var (
	chat  = reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/app/1/chat/proto"}
	files = reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/app/1/files/proto"}
)

const t0 = int64(1_780_000_000_000_000_000)

// TestSyncConvergesBothWays: two nodes with overlapping stores in two
// scopes end with equal message sets and equal roots after one Sync, each
// side having received exactly what it lacked.
func TestSyncConvergesBothWays(t *testing.T) {
	a := newNode(t, []reconcile.Scope{chat, files})
	b := newNode(t, []reconcile.Scope{chat, files})
	connect(t, a.h, b.h)
	for i := range 300 {
		m := msg(chat, t0+int64(i)*1e9)
		switch {
		case i%7 == 0:
			a.put(t, m)
		case i%11 == 0:
			b.put(t, m)
		default:
			a.put(t, m)
			b.put(t, m)
		}
		f := msg(files, t0+int64(i)*1e9)
		if i < 250 {
			a.put(t, f)
		}
		if i > 30 {
			b.put(t, f)
		}
	}
	wantA, wantB := len(b.store.hashes(chat))-countBoth(a, b, chat), len(a.store.hashes(chat))-countBoth(a, b, chat)
	rep, err := a.svc.Sync(t.Context(), b.h.ID(), chat, files)
	require.NoError(t, err)
	require.NoError(t, rep.Err())
	for _, sc := range []reconcile.Scope{chat, files} {
		require.Equal(t, a.store.hashes(sc), b.store.hashes(sc), "scope %v", sc)
		require.Equal(t, a.store.root(sc), b.store.root(sc))
	}
	require.Equal(t, wantA, rep.Scopes[0].Received)
	require.Equal(t, wantA, rep.Scopes[0].Need)
	require.Equal(t, wantB, rep.Scopes[0].Sent)
	require.Equal(t, 31, rep.Scopes[1].Sent)     // files 0..30: only a has them
	require.Equal(t, 50, rep.Scopes[1].Received) // files 250..299: only b
	for _, s := range rep.Scopes {
		require.Zero(t, s.Rejected)
		require.Positive(t, s.Bytes)
		// Three round trips, and one more when the sketch does not
		// decode at the first try: 1 in 100 by design, and the
		// payloads here are random.
		require.LessOrEqual(t, s.RoundTrips, 4)
	}

	// Now in sync: one round trip, nothing moves.
	rep, err = a.svc.Sync(t.Context(), b.h.ID(), chat, files)
	require.NoError(t, err)
	for _, s := range rep.Scopes {
		require.Equal(t, 1, s.RoundTrips)
		require.Zero(t, s.Received+s.Sent+s.Need+s.Have)
	}
}

func countBoth(a, b *node, sc reconcile.Scope) int {
	n := 0
	hb := b.store.hashes(sc)
	for h := range a.store.hashes(sc) {
		if hb[h] {
			n++
		}
	}
	return n
}

// TestSyncLine: three nodes in a line converge when the middle one syncs
// with both ends.
func TestSyncLine(t *testing.T) {
	var ns []*node
	for range 3 {
		ns = append(ns, newNode(t, []reconcile.Scope{chat}))
	}
	connect(t, ns[0].h, ns[1].h)
	connect(t, ns[1].h, ns[2].h)
	for i := range 90 {
		ns[i%3].put(t, msg(chat, t0+int64(i)*1e6))
	}
	for _, pair := range [][2]int{{1, 0}, {1, 2}, {1, 0}} {
		_, err := ns[pair[0]].svc.Sync(t.Context(), ns[pair[1]].h.ID(), chat)
		require.NoError(t, err)
	}
	for _, n := range ns {
		require.Len(t, n.store.hashes(chat), 90)
		require.Equal(t, ns[0].store.root(chat), n.store.root(chat))
	}
}

func TestSyncUnsupportedScopeFailsAlone(t *testing.T) {
	a := newNode(t, []reconcile.Scope{chat, files})
	b := newNode(t, []reconcile.Scope{chat})
	connect(t, a.h, b.h)
	b.put(t, msg(chat, t0))
	a.put(t, msg(files, t0))
	rep, err := a.svc.Sync(t.Context(), b.h.ID(), chat, files)
	require.NoError(t, err)
	require.NoError(t, rep.Scopes[0].Err)
	require.Equal(t, 1, rep.Scopes[0].Received)
	require.ErrorIs(t, rep.Scopes[1].Err, protocol.ErrUnsupportedScope)
	require.Empty(t, b.store.hashes(files))
}

func TestSyncUnknownLocalScope(t *testing.T) {
	a := newNode(t, []reconcile.Scope{chat})
	b := newNode(t, []reconcile.Scope{chat, files})
	connect(t, a.h, b.h)
	_, err := a.svc.Sync(t.Context(), b.h.ID(), files)
	require.ErrorIs(t, err, protocol.ErrUnknownScope)
}

// TestSyncWithPeerOfVersion30: a peer that serves sync 3.0 alone (no
// MATCH) is reached over it, and the scopes converge. (The session then
// asks for no MATCH, which such a peer refuses: TestMatchSettlesStuckScope
// and TestResponderWithoutMatchRefusesIt in reconcile.)
func TestSyncWithPeerOfVersion30(t *testing.T) {
	a := newNode(t, []reconcile.Scope{chat})
	b := newNode(t, []reconcile.Scope{chat})
	b.h.RemoveStreamHandler(protocol.SyncID)
	connect(t, a.h, b.h)
	for i := range 200 {
		m := msg(chat, t0+int64(i)*1e9)
		if i%9 != 0 {
			a.put(t, m)
		}
		if i%13 != 0 {
			b.put(t, m)
		}
	}
	rep, err := a.svc.Sync(t.Context(), b.h.ID(), chat)
	require.NoError(t, err)
	require.NoError(t, rep.Err())
	require.Equal(t, a.store.hashes(chat), b.store.hashes(chat))
	require.Equal(t, a.store.root(chat), b.store.root(chat))
}

func TestPeerWithoutProtocolFailsAtNegotiation(t *testing.T) {
	a := newNode(t, []reconcile.Scope{chat})
	plain := newHost(t)
	connect(t, a.h, plain)
	a.put(t, msg(chat, t0))
	_, err := a.svc.Sync(t.Context(), plain.ID(), chat)
	require.ErrorIs(t, err, protocol.ErrProtocolNotSupported)
}

// TestSyncWindow: a session bound to a window leaves older messages out.
func TestSyncWindow(t *testing.T) {
	now := time.Unix(0, t0+1000*1e9)
	clock := protocol.WithNow(func() time.Time { return now })
	a := newNode(t, []reconcile.Scope{chat}, clock, protocol.WithWindow(100*time.Second, 10*time.Second))
	b := newNode(t, []reconcile.Scope{chat}, clock)
	connect(t, a.h, b.h)
	old, inside, fresh := msg(chat, t0+800*1e9), msg(chat, t0+950*1e9), msg(chat, t0+995*1e9)
	b.put(t, old, inside, fresh)
	rep, err := a.svc.Sync(t.Context(), b.h.ID(), chat)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Scopes[0].Received)
	require.Equal(t, map[reconcile.Hash]bool{inside.Hash(): true}, a.store.hashes(chat))
}

func TestValidatorVetoes(t *testing.T) {
	veto := protocol.WithValidator(func(_ context.Context, _ peer.ID, m *reconcile.Message) error {
		if string(m.Payload[:1]) == "x" {
			return errors.New("no x")
		}
		return nil
	})
	a := newNode(t, []reconcile.Scope{chat}, veto)
	b := newNode(t, []reconcile.Scope{chat})
	connect(t, a.h, b.h)
	good, bad := msg(chat, t0), msg(chat, t0+1)
	bad.Payload[0] = 'x'
	good.Payload[0] = 'g'
	b.put(t, good, bad)
	rep, err := a.svc.Sync(t.Context(), b.h.ID(), chat)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Scopes[0].Received)
	require.Equal(t, 1, rep.Scopes[0].Rejected)
	require.Equal(t, map[reconcile.Hash]bool{good.Hash(): true}, a.store.hashes(chat))
	strikes, refused := a.svc.Strikes(b.h.ID())
	require.Equal(t, 1, strikes)
	require.False(t, refused)
}

// TestAuthorizerRefusesScope: a scope the server keeps for other peers
// only is refused, alone; the pull back is refused too.
func TestAuthorizerRefusesScope(t *testing.T) {
	var allowed peer.ID
	b := newNode(t, []reconcile.Scope{chat, files}, protocol.WithAuthorizer(func(p peer.ID, sc reconcile.Scope) bool {
		return sc != files || p == allowed
	}))
	a := newNode(t, []reconcile.Scope{chat, files})
	connect(t, a.h, b.h)
	b.put(t, msg(chat, t0), msg(files, t0))
	rep, err := a.svc.Sync(t.Context(), b.h.ID(), chat, files)
	require.NoError(t, err)
	require.NoError(t, rep.Scopes[0].Err)
	require.ErrorIs(t, rep.Scopes[1].Err, protocol.ErrRefused)
	require.Empty(t, a.store.hashes(files))

	allowed = a.h.ID()
	rep, err = a.svc.Sync(t.Context(), b.h.ID(), chat, files)
	require.NoError(t, err)
	require.NoError(t, rep.Err())
	require.Len(t, a.store.hashes(files), 1)
}

func TestFetchByHash(t *testing.T) {
	a := newNode(t, []reconcile.Scope{chat})
	b := newNode(t, []reconcile.Scope{chat})
	connect(t, a.h, b.h)
	m1, m2 := msg(chat, t0), msg(chat, t0+1)
	b.put(t, m1, m2)
	missing := msg(chat, t0+2)
	rep, err := a.svc.Fetch(t.Context(), b.h.ID(), chat, []reconcile.Key{m1.Key(), missing.Key()})
	require.NoError(t, err)
	require.Equal(t, 1, rep.Received)
	require.Equal(t, map[reconcile.Hash]bool{m1.Hash(): true}, a.store.hashes(chat))
	_, err = a.svc.Fetch(t.Context(), b.h.ID(), files, []reconcile.Key{m1.Key()})
	require.ErrorIs(t, err, protocol.ErrUnknownScope)
}

// TestBackToBackSessions: a client's sessions one after another never
// count against each other at the server.
func TestBackToBackSessions(t *testing.T) {
	a := newNode(t, []reconcile.Scope{chat}, protocol.WithSessionLimits(1, 4))
	b := newNode(t, []reconcile.Scope{chat}, protocol.WithSessionLimits(1, 4))
	connect(t, a.h, b.h)
	for i := range 20 {
		if i%5 == 0 {
			b.put(t, msg(chat, t0+int64(i)))
		}
		_, err := a.svc.Sync(t.Context(), b.h.ID(), chat)
		require.NoError(t, err, "session %d", i)
	}
}
