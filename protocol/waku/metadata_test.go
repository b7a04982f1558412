package waku_test

import (
	"context"
	"encoding/binary"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/libp2p/go-msgio/protoio"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/protocol/waku"
)

// twoHosts returns two connected hosts on a mock network.
func twoHosts(t *testing.T) (host.Host, host.Host) {
	t.Helper()
	mn, err := mocknet.FullMeshConnected(2)
	require.NoError(t, err)
	t.Cleanup(func() { _ = mn.Close() })
	hs := mn.Hosts()
	return hs[0], hs[1]
}

// mountMetadata starts a metadata service on h whose shards a test can
// change between requests.
func mountMetadata(t *testing.T, h host.Host, cluster uint16, shards ...uint16) (*waku.MetadataService, func(...uint16)) {
	t.Helper()
	var mu sync.Mutex
	set := func(s ...uint16) { mu.Lock(); shards = s; mu.Unlock() }
	get := func() []uint16 { mu.Lock(); defer mu.Unlock(); return shards }
	svc, err := waku.NewMetadataService(h, cluster, get)
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Close() })
	return svc, set
}

func TestQueryMetadataReturnsClusterAndShards(t *testing.T) {
	server, client := twoHosts(t)
	_, setShards := mountMetadata(t, server, 1, 4, 2, 4)

	got, err := waku.QueryMetadata(t.Context(), client, server.ID(), waku.Metadata{ClusterID: 1, Shards: []uint16{0}})
	require.NoError(t, err)
	require.Equal(t, waku.Metadata{ClusterID: 1, Shards: []uint16{2, 4}}, got)

	// Every answer asks for the shards anew.
	setShards()
	got, err = waku.QueryMetadata(t.Context(), client, server.ID(), waku.Metadata{ClusterID: 1})
	require.NoError(t, err)
	require.Equal(t, waku.Metadata{ClusterID: 1, Shards: []uint16{}}, got)
}

func TestMetadataServiceCloseUnmounts(t *testing.T) {
	server, client := twoHosts(t)
	svc, _ := mountMetadata(t, server, 1, 4)
	require.NoError(t, svc.Close())
	_, err := waku.QueryMetadata(t.Context(), client, server.ID(), waku.Metadata{ClusterID: 1})
	require.Error(t, err)
}

// TestMetadataHostileRequestsAreReset sends what no honest dialer sends
// and expects a reset stream each time, then an honest exchange.
func TestMetadataHostileRequestsAreReset(t *testing.T) {
	server, client := twoHosts(t)
	mountMetadata(t, server, 1, 4)

	frame := func(m *pb.WakuMetadataRequest) []byte {
		b, err := m.Marshal()
		require.NoError(t, err)
		return append(binary.AppendUvarint(nil, uint64(len(b))), b...)
	}
	hostile := map[string][]byte{
		"oversized":        append(binary.AppendUvarint(nil, 1<<20), make([]byte, 8<<10)...),
		"huge length":      {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"not protobuf":     {4, 0xff, 0xff, 0xff, 0xff},
		"cluster too high": frame(&pb.WakuMetadataRequest{ClusterId: 70000}),
		"shard too high":   frame(&pb.WakuMetadataRequest{ClusterId: 1, Shards: []uint32{1, 5000}}),
		"too many shards":  frame(&pb.WakuMetadataRequest{ClusterId: 1, Shards: make([]uint32, waku.MaxShards+1)}),
	}
	for name, b := range hostile {
		t.Run(name, func(t *testing.T) {
			st, err := client.NewStream(t.Context(), server.ID(), waku.MetadataID)
			require.NoError(t, err)
			defer st.Reset()
			_ = st.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = st.Write(b)
			_, err = io.ReadAll(st)
			require.ErrorIs(t, err, network.ErrReset)

			got, err := waku.QueryMetadata(t.Context(), client, server.ID(), waku.Metadata{ClusterID: 1})
			require.NoError(t, err)
			require.Equal(t, waku.Metadata{ClusterID: 1, Shards: []uint16{4}}, got)
		})
	}
}

// TestQueryMetadataRejectsBadAnswers checks the client against a peer
// that answers out of bounds or not at all.
func TestQueryMetadataRejectsBadAnswers(t *testing.T) {
	server, client := twoHosts(t)
	answers := map[string]*pb.WakuMetadataResponse{
		"cluster too high": {ClusterId: 1 << 16},
		"shard too high":   {ClusterId: 1, Shards: []uint32{waku.MaxShards}},
	}
	for name, resp := range answers {
		t.Run(name, func(t *testing.T) {
			server.SetStreamHandler(waku.MetadataID, func(st network.Stream) {
				var req pb.WakuMetadataRequest
				if protoio.NewDelimitedReader(st, 1<<10).ReadMsg(&req) == nil {
					_ = protoio.NewDelimitedWriter(st).WriteMsg(resp)
				}
				_ = st.Close()
			})
			_, err := waku.QueryMetadata(t.Context(), client, server.ID(), waku.Metadata{ClusterID: 1})
			require.ErrorIs(t, err, waku.ErrInvalidMetadata)
		})
	}

	// A peer that never answers: the context ends the exchange.
	server.SetStreamHandler(waku.MetadataID, func(st network.Stream) { time.Sleep(2 * time.Second); _ = st.Reset() })
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := waku.QueryMetadata(ctx, client, server.ID(), waku.Metadata{ClusterID: 1})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
