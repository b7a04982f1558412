package waku

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio/protoio"
)

const (
	// MetadataID is the protocol ID of the Waku metadata exchange.
	MetadataID protocol.ID = "/vac/waku/metadata/1.0.0"
	// MetadataServiceName is the resource manager service that metadata
	// streams run in.
	MetadataServiceName = "waku.metadata"
	// MaxMetadataSize caps every metadata message read, request or
	// response, in bytes of its protobuf: a full list of MaxShards shards
	// takes about 3 KiB.
	MaxMetadataSize = 4 << 10
	// DefaultMetadataTimeout bounds a whole exchange, either side.
	DefaultMetadataTimeout = 10 * time.Second
)

// metadataMemory is what a metadata stream holds at most: the reader's
// buffer and one message.
const metadataMemory = 4<<10 + MaxMetadataSize

// ErrInvalidMetadata is the error, wrapped with the reason, of a
// metadata message that is over MaxMetadataSize, does not decode, or
// names a cluster over 65535, a shard of MaxShards or more, or more than
// MaxShards shards.
var ErrInvalidMetadata = errors.New("waku: invalid metadata")

// Metadata is what a node tells of itself in the metadata exchange: its
// cluster and the shards of it that it serves.
type Metadata struct {
	ClusterID uint16
	// Shards are sorted and each given once in what this package
	// returns.
	Shards []uint16
}

// metadataFromWire checks a received cluster and shard list and returns
// them with the shards sorted and each once.
func metadataFromWire(cluster uint32, shards []uint32) (Metadata, error) {
	if cluster > 1<<16-1 {
		return Metadata{}, fmt.Errorf("%w: cluster %d over 65535", ErrInvalidMetadata, cluster)
	}
	if len(shards) > MaxShards {
		return Metadata{}, fmt.Errorf("%w: %d shards, at most %d", ErrInvalidMetadata, len(shards), MaxShards)
	}
	m := Metadata{ClusterID: uint16(cluster), Shards: make([]uint16, 0, len(shards))}
	for _, s := range shards {
		if s >= MaxShards {
			return Metadata{}, fmt.Errorf("%w: shard %d, want below %d", ErrInvalidMetadata, s, MaxShards)
		}
		m.Shards = append(m.Shards, uint16(s))
	}
	slices.Sort(m.Shards)
	m.Shards = slices.Compact(m.Shards)
	return m, nil
}

// wireShards returns the shards as the wire carries them.
func (m Metadata) wireShards() []uint32 {
	out := make([]uint32, len(m.Shards))
	for i, s := range m.Shards {
		out[i] = uint32(s)
	}
	return out
}

// readMetadataMsg reads one varint-delimited message of at most
// MaxMetadataSize bytes from r. A message that is too large or does not
// decode gives ErrInvalidMetadata; a failing stream gives its own error.
func readMetadataMsg(r io.Reader, m proto.Message) error {
	err := protoio.NewDelimitedReader(r, MaxMetadataSize).ReadMsg(m)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.ErrShortBuffer):
		return fmt.Errorf("%w: message over %d bytes", ErrInvalidMetadata, MaxMetadataSize)
	case isStreamError(err):
		return err
	}
	return fmt.Errorf("%w: %w", ErrInvalidMetadata, err)
}

// isStreamError tells the stream's failures (closed, reset, timed out)
// from the peer's bad bytes.
func isStreamError(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, network.ErrReset) ||
		errors.Is(err, net.ErrClosed)
}

// writeMetadataMsg writes one varint-delimited message to w.
func writeMetadataMsg(w io.Writer, m proto.Message) error {
	return protoio.NewDelimitedWriter(w).WriteMsg(m)
}
