package protocol

import (
	"testing"

	"github.com/storesync/storesync/pb"
)

// FuzzUnpack decodes arbitrary bytes as a fetch response the way the
// client does: a compressed bomb or a malformed batch must give an error
// within the batch limit, never a panic or an unbounded allocation.
func FuzzUnpack(f *testing.F) {
	batch := &pb.MessageBatch{Messages: []*pb.Message{{PubsubTopic: "p", ContentTopic: "c", Timestamp: 1, Payload: make([]byte, 2000)}}}
	raw, _ := batch.Marshal()
	plain, _ := (&pb.FetchResponse{Batch: batch, Answered: 1}).Marshal()
	packed, _ := (&pb.FetchResponse{Zstd: compress(raw), Answered: 1}).Marshal()
	f.Add(plain)
	f.Add(packed)
	s := &Service{cfg: defaults()}
	s.cfg.maxBatchBytes = 64 << 10
	f.Fuzz(func(t *testing.T, data []byte) {
		var resp pb.FetchResponse
		if resp.Unmarshal(data) != nil {
			return
		}
		msgs, err := s.unpack(resp.Batch, resp.Zstd)
		if err == nil && len(resp.Zstd) > 0 {
			size := 0
			for _, m := range msgs {
				size += m.Size()
			}
			if size > s.cfg.maxBatchBytes+64<<10 {
				t.Fatalf("decompressed %d bytes past the limit", size)
			}
		}
	})
}
