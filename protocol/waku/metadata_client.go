package waku

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/protocol/internal/streams"
)

// QueryMetadata tells peer p what self says (the caller's cluster and
// shards) and returns what p answers of itself. The exchange ends with
// ctx or after DefaultMetadataTimeout, whichever is first. A peer that
// does not speak the protocol fails at negotiation; one that answers
// out of bounds gives an error wrapping ErrInvalidMetadata.
func QueryMetadata(ctx context.Context, h host.Host, p peer.ID, self Metadata) (Metadata, error) {
	if h == nil {
		return Metadata{}, errors.New("waku: nil host")
	}
	st, err := h.NewStream(ctx, p, MetadataID)
	if err != nil {
		return Metadata{}, fmt.Errorf("waku: metadata of %s: %w", p, err)
	}
	m, err := queryMetadata(ctx, st, self)
	if err != nil {
		_ = st.Reset()
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return Metadata{}, fmt.Errorf("waku: metadata of %s: %w", p, err)
	}
	_ = st.Close()
	return m, nil
}

func queryMetadata(ctx context.Context, st network.Stream, self Metadata) (Metadata, error) {
	if err := streams.Setup(st, MetadataServiceName, metadataMemory); err != nil {
		return Metadata{}, err
	}
	defer st.Scope().ReleaseMemory(metadataMemory)
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	defer stop()
	deadline := time.Now().Add(DefaultMetadataTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = st.SetDeadline(deadline)

	req := pb.WakuMetadataRequest{ClusterId: uint32(self.ClusterID), Shards: self.wireShards()}
	if err := writeMetadataMsg(st, &req); err != nil {
		return Metadata{}, err
	}
	var resp pb.WakuMetadataResponse
	if err := readMetadataMsg(st, &resp); err != nil {
		return Metadata{}, err
	}
	return metadataFromWire(resp.ClusterId, resp.Shards)
}
