package node_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-msgio/protoio"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// otherScope is kept under another pubsub topic than chatScope and
// filesScope, with a content topic of the same name as chatScope's.
var otherScope = reconcile.Scope{PubsubTopic: "/waku/2/rs/1/4", ContentTopic: chatScope.ContentTopic}

// wakuFixture is a node serving Store v3 over its LevelDB store, the
// messages it holds, and a plain libp2p host to query it from.
type wakuFixture struct {
	n      *node.Node
	client host.Host
	msgs   []reconcile.Message
}

func newWakuFixture(t *testing.T, per int, opts ...protocol.WakuStoreOption) *wakuFixture {
	t.Helper()
	n := startNode(t, t.TempDir(), node.WithScopes(otherScope), node.WithWakuStore(opts...))
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	r := rand.New(rand.NewPCG(21, 22))
	var msgs []reconcile.Message
	for _, sc := range []reconcile.Scope{chatScope, filesScope, otherScope} {
		for range per {
			// Few distinct timestamps, so that ties are ordered by hash.
			m := msg(sc, 1e9+r.Int64N(int64(per/2+1))*1e6, r.Uint64())
			msgs = append(msgs, m)
		}
	}
	_, err := n.Put(t.Context(), msgs...)
	require.NoError(t, err)
	c, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Connect(t.Context(), info(n)))
	return &wakuFixture{n: n, client: c, msgs: msgs}
}

func (f *wakuFixture) query(t *testing.T, req *pb.StoreQueryRequest) *pb.StoreQueryResponse {
	t.Helper()
	resp, err := protocol.QueryWakuStore(t.Context(), f.client, f.n.Host().ID(), req)
	require.NoError(t, err)
	require.Equal(t, req.RequestId, resp.RequestId)
	return resp
}

// want returns the messages of the given scopes in [start, end) in
// Store v3 order: timestamp, then hash.
func (f *wakuFixture) want(start, end int64, scopes ...reconcile.Scope) []reconcile.Message {
	var out []reconcile.Message
	for _, m := range f.msgs {
		if slices.Contains(scopes, m.Scope()) && m.Timestamp >= start && (end == 0 || m.Timestamp < end) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b reconcile.Message) int { return a.Key().Compare(b.Key()) })
	return slices.CompactFunc(out, func(a, b reconcile.Message) bool { return a.Key() == b.Key() })
}

func hashesOf(msgs []reconcile.Message) [][]byte {
	out := make([][]byte, len(msgs))
	for i := range msgs {
		h := msgs[i].Hash()
		out[i] = h[:]
	}
	return out
}

func entryHashes(kvs []*pb.WakuMessageKeyValue) [][]byte {
	out := make([][]byte, len(kvs))
	for i, kv := range kvs {
		out[i] = kv.MessageHash
	}
	return out
}

// TestWakuStorePagesForwardAsJSWakuDoes: a content-filtered query over two
// content topics and a time range, paged forward the way js-waku pages
// (the hash of the last message it got as the next cursor, until an empty
// page), returns exactly the matching messages in order, with their data
// and pubsub topic; following the server's cursors gives the same.
func TestWakuStorePagesForwardAsJSWakuDoes(t *testing.T) {
	f := newWakuFixture(t, 300)
	start, end := int64(1e9+20e6), int64(1e9+120e6)
	want := f.want(start, end, chatScope, filesScope)
	require.Greater(t, len(want), 100)
	base := pb.StoreQueryRequest{RequestId: "fwd", IncludeData: true, PubsubTopic: chatScope.PubsubTopic,
		ContentTopics: []string{chatScope.ContentTopic, filesScope.ContentTopic, "/app/1/unknown/proto"},
		TimeStart:     start, TimeEnd: end, PaginationForward: true, PaginationLimit: 25}

	var got []*pb.WakuMessageKeyValue
	req := base
	for pages := 0; ; pages++ {
		require.Less(t, pages, 100, "paging ends")
		resp := f.query(t, &req)
		require.EqualValues(t, protocol.StatusOK, resp.StatusCode, resp.StatusDesc)
		if len(resp.Messages) == 0 {
			break
		}
		require.LessOrEqual(t, len(resp.Messages), 25)
		got = append(got, resp.Messages...)
		req.PaginationCursor = resp.Messages[len(resp.Messages)-1].MessageHash
	}
	require.Equal(t, hashesOf(want), entryHashes(got))
	for i, kv := range got {
		require.Equal(t, want[i].PubsubTopic, kv.PubsubTopic)
		m := protocol.MessageFromWaku(kv.PubsubTopic, kv.Message)
		require.Equal(t, want[i].Hash(), m.Hash(), "the message hashes to its key")
	}

	req, got = base, nil
	for {
		resp := f.query(t, &req)
		require.EqualValues(t, protocol.StatusOK, resp.StatusCode, resp.StatusDesc)
		got = append(got, resp.Messages...)
		if resp.PaginationCursor == nil {
			break
		}
		require.Equal(t, resp.Messages[len(resp.Messages)-1].MessageHash, resp.PaginationCursor)
		req.PaginationCursor = resp.PaginationCursor
	}
	require.Equal(t, hashesOf(want), entryHashes(got))
}

// TestWakuStorePagesBackward: backward pages come newest page first, each
// in ascending order, and together hold every match once; without topics
// the query covers every kept scope.
func TestWakuStorePagesBackward(t *testing.T) {
	f := newWakuFixture(t, 120)
	want := f.want(0, 0, chatScope, filesScope, otherScope)
	req := pb.StoreQueryRequest{RequestId: "back", PaginationLimit: 17}
	var pages [][][]byte
	for {
		resp := f.query(t, &req)
		require.EqualValues(t, protocol.StatusOK, resp.StatusCode, resp.StatusDesc)
		for _, kv := range resp.Messages {
			require.Nil(t, kv.Message, "no data unless asked")
		}
		pages = append(pages, entryHashes(resp.Messages))
		if resp.PaginationCursor == nil {
			break
		}
		require.Equal(t, resp.Messages[0].MessageHash, resp.PaginationCursor)
		req.PaginationCursor = resp.PaginationCursor
	}
	var got [][]byte
	for i := len(pages) - 1; i >= 0; i-- {
		got = append(got, pages[i]...)
	}
	require.Equal(t, hashesOf(want), got)
}

// TestWakuStoreLooksUpHashes: a lookup returns the stored messages among
// the hashes asked, in order, and none of the others (a presence query).
func TestWakuStoreLooksUpHashes(t *testing.T) {
	f := newWakuFixture(t, 40)
	pick := []reconcile.Message{f.msgs[70], f.msgs[3], f.msgs[110]}
	unknown := bytes.Repeat([]byte{7}, 32)
	resp := f.query(t, &pb.StoreQueryRequest{RequestId: "hashes",
		MessageHashes: append(hashesOf(pick), unknown)})
	require.EqualValues(t, protocol.StatusOK, resp.StatusCode, resp.StatusDesc)
	slices.SortFunc(pick, func(a, b reconcile.Message) int { return a.Key().Compare(b.Key()) })
	require.Equal(t, hashesOf(pick), entryHashes(resp.Messages))
	require.Nil(t, resp.PaginationCursor)
}

// TestWakuStoreRefusesBadQueries: each breach of the Store v3 rules gets
// status 400 with a reason, and the server goes on serving.
func TestWakuStoreRefusesBadQueries(t *testing.T) {
	f := newWakuFixture(t, 10)
	h := f.msgs[0].Hash()
	for name, req := range map[string]*pb.StoreQueryRequest{
		"filter and hashes":       {PubsubTopic: chatScope.PubsubTopic, ContentTopics: []string{chatScope.ContentTopic}, MessageHashes: [][]byte{h[:]}},
		"pubsub topic alone":      {PubsubTopic: chatScope.PubsubTopic},
		"content topics alone":    {ContentTopics: []string{chatScope.ContentTopic}},
		"short hash":              {MessageHashes: [][]byte{h[:5]}},
		"short cursor":            {PaginationCursor: h[:31]},
		"unknown cursor":          {PaginationCursor: bytes.Repeat([]byte{9}, 32)},
		"negative time":           {TimeStart: -5},
		"too many content topics": {PubsubTopic: "/p", ContentTopics: slices.Repeat([]string{"/a/1/b/c"}, 33)},
	} {
		req.RequestId = name
		resp := f.query(t, req)
		require.EqualValues(t, protocol.StatusBadRequest, resp.StatusCode, name)
		require.NotEmpty(t, resp.StatusDesc, name)
	}
	for name, raw := range map[string][]byte{
		"garbage":   {5, 0xff, 0xff, 0xff, 0xff, 0xff},
		"oversized": binary.AppendUvarint(nil, 1<<30),
	} {
		s, err := f.client.NewStream(t.Context(), f.n.Host().ID(), protocol.StoreQueryID)
		require.NoError(t, err)
		_ = s.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = s.Write(raw)
		require.NoError(t, err)
		var resp pb.StoreQueryResponse
		require.NoError(t, protoio.NewDelimitedReader(s, 1<<20).ReadMsg(&resp), name)
		require.EqualValues(t, protocol.StatusBadRequest, resp.StatusCode, name)
		_ = s.Reset()
	}
	resp := f.query(t, &pb.StoreQueryRequest{RequestId: "after"})
	require.EqualValues(t, protocol.StatusOK, resp.StatusCode)
}

// TestWakuStorePageBytes: a page ends early at the byte cap, and paging
// still returns every message.
func TestWakuStorePageBytes(t *testing.T) {
	f := newWakuFixture(t, 0, protocol.WithPageBytes(64<<10))
	big := make([]reconcile.Message, 30)
	for i := range big {
		big[i] = chatMessage(int64(1e9+i), 20<<10, byte(i))
	}
	_, err := f.n.Put(t.Context(), big...)
	require.NoError(t, err)
	req := pb.StoreQueryRequest{RequestId: "big", IncludeData: true, PaginationForward: true, PaginationLimit: 100}
	var got [][]byte
	for {
		resp := f.query(t, &req)
		require.EqualValues(t, protocol.StatusOK, resp.StatusCode, resp.StatusDesc)
		require.LessOrEqual(t, len(resp.Messages), 4, "about 64 KiB a page")
		got = append(got, entryHashes(resp.Messages)...)
		if resp.PaginationCursor == nil {
			break
		}
		req.PaginationCursor = resp.PaginationCursor
	}
	f.msgs = big
	require.Equal(t, hashesOf(f.want(0, 0, chatScope)), got)
}

// chatMessage is a message of chatScope with a payload of n bytes.
func chatMessage(ts int64, n int, fill byte) reconcile.Message {
	return reconcile.Message{PubsubTopic: chatScope.PubsubTopic, ContentTopic: chatScope.ContentTopic,
		Payload: bytes.Repeat([]byte{fill}, n), Timestamp: ts}
}

// TestWakuStoreRate: queries past a peer's rate get status 429.
func TestWakuStoreRate(t *testing.T) {
	f := newWakuFixture(t, 10, protocol.WithQueryRate(3, 1))
	codes := map[uint32]int{}
	for range 5 {
		resp := f.query(t, &pb.StoreQueryRequest{RequestId: "r"})
		codes[resp.StatusCode]++
	}
	require.Equal(t, map[uint32]int{protocol.StatusOK: 3, protocol.StatusTooManyRequests: 2}, codes)
}

// TestWakuStoreIdleStreams: streams opened and left idle past the bound
// are reset, while those within it have no deadline and are answered
// when their request comes.
func TestWakuStoreIdleStreams(t *testing.T) {
	f := newWakuFixture(t, 10, protocol.WithIdleStreams(2, 16))
	var streams []network.Stream
	for range 5 {
		s, err := f.client.NewStream(t.Context(), f.n.Host().ID(), protocol.StoreQueryID)
		require.NoError(t, err)
		_, err = s.Write(nil) // the protocol handshake alone
		require.NoError(t, err)
		streams = append(streams, s)
	}
	var open []network.Stream
	for _, s := range streams {
		_ = s.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := s.Read(make([]byte, 1))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			open = append(open, s)
			continue
		}
		require.ErrorIs(t, err, network.ErrReset)
	}
	require.Len(t, open, 2, "two idle streams kept, three reset")
	for _, s := range open {
		_ = s.SetDeadline(time.Now().Add(10 * time.Second))
		require.NoError(t, protoio.NewDelimitedWriter(s).WriteMsg(&pb.StoreQueryRequest{RequestId: "late"}))
		var resp pb.StoreQueryResponse
		require.NoError(t, protoio.NewDelimitedReader(s, 1<<20).ReadMsg(&resp))
		require.EqualValues(t, protocol.StatusOK, resp.StatusCode)
		require.Equal(t, "late", resp.RequestId)
	}
}
