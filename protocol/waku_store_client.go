package protocol

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio/protoio"

	"github.com/storesync/storesync/pb"
)

// maxStoreResponse caps the Store v3 response a client reads.
const maxStoreResponse = 32 << 20

// QueryWakuStore sends one Store v3 query to p and returns its response,
// whatever its status code; an error means no response was read. A
// deadline on ctx bounds the whole exchange, 30 s if it has none.
func QueryWakuStore(ctx context.Context, h host.Host, p peer.ID, req *pb.StoreQueryRequest) (*pb.StoreQueryResponse, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	s, err := h.NewStream(ctx, p, StoreQueryID)
	if err != nil {
		return nil, fmt.Errorf("store query: %w", err)
	}
	defer resetOnCancel(ctx, s)()
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	if err := protoio.NewDelimitedWriter(s).WriteMsg(req); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("store query: %w", err)
	}
	_ = s.CloseWrite()
	var resp pb.StoreQueryResponse
	if err := protoio.NewDelimitedReader(s, maxStoreResponse).ReadMsg(&resp); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("store query: read the response: %w", err)
	}
	_ = s.Close()
	return &resp, nil
}
