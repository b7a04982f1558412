package waku

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/pb"
)

// rw is a request to read and a buffer for the answer.
type rw struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (b *rw) Read(p []byte) (int, error)  { return b.in.Read(p) }
func (b *rw) Write(p []byte) (int, error) { return b.out.Write(p) }

// FuzzServeMetadata feeds any bytes to the server's decode path: it must
// fail or answer, never panic, and an answer must decode to the
// service's own metadata.
func FuzzServeMetadata(f *testing.F) {
	for _, m := range []*pb.WakuMetadataRequest{{ClusterId: 1, Shards: []uint32{4, 2}}, {ClusterId: 70000}, {}} {
		b, err := m.Marshal()
		require.NoError(f, err)
		f.Add(append(binary.AppendUvarint(nil, uint64(len(b))), b...))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	s := &MetadataService{cluster: 1, shards: func() []uint16 { return []uint16{4, 2} }}
	f.Fuzz(func(t *testing.T, in []byte) {
		b := &rw{in: bytes.NewReader(in)}
		theirs, err := s.serveMetadata(b)
		if err != nil {
			require.Zero(t, b.out.Len(), "no answer after a bad request")
			return
		}
		require.LessOrEqual(t, len(theirs.Shards), MaxShards)
		var resp pb.WakuMetadataResponse
		require.NoError(t, readMetadataMsg(&b.out, &resp))
		got, err := metadataFromWire(resp.ClusterId, resp.Shards)
		require.NoError(t, err)
		require.Equal(t, Metadata{ClusterID: 1, Shards: []uint16{2, 4}}, got)
	})
}

// FuzzMetadataResponse feeds any bytes to the client's decode path: it
// must fail with a reason or give metadata in bounds, never panic.
func FuzzMetadataResponse(f *testing.F) {
	b, err := (&pb.WakuMetadataResponse{ClusterId: 1, Shards: []uint32{4}}).Marshal()
	require.NoError(f, err)
	f.Add(append(binary.AppendUvarint(nil, uint64(len(b))), b...))
	f.Add([]byte{3, 8, 0x80, 0x80})
	f.Fuzz(func(t *testing.T, in []byte) {
		var resp pb.WakuMetadataResponse
		if readMetadataMsg(bytes.NewReader(in), &resp) != nil {
			return
		}
		m, err := metadataFromWire(resp.ClusterId, resp.Shards)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidMetadata)
			return
		}
		for i, s := range m.Shards {
			require.Less(t, s, uint16(MaxShards))
			if i > 0 {
				require.Less(t, m.Shards[i-1], s)
			}
		}
	})
}
