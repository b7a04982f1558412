package protocol

import (
	"testing"

	"github.com/storesync/storesync/pb"
)

// FuzzStoreQueryRequest decodes arbitrary bytes as a Store v3 request and
// checks it: never a panic, and every query it lets through is within the
// server's limits, with hashes and cursor of the right length.
func FuzzStoreQueryRequest(f *testing.F) {
	seeds := []*pb.StoreQueryRequest{
		{RequestId: "a", IncludeData: true, PubsubTopic: "/waku/2/rs/1/4", ContentTopics: []string{"/a/1/b/proto"},
			TimeStart: 5, TimeEnd: 9, PaginationForward: true, PaginationLimit: 1 << 40},
		{MessageHashes: [][]byte{make([]byte, 32), make([]byte, 31)}, PaginationCursor: make([]byte, 32)},
		{},
	}
	for _, s := range seeds {
		b, err := s.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	cfg := defaultWakuStoreConfig()
	f.Fuzz(func(t *testing.T, b []byte) {
		var req pb.StoreQueryRequest
		if req.Unmarshal(b) != nil {
			return
		}
		q, err := parseStoreQuery(&req, &cfg)
		if err != nil {
			return
		}
		switch {
		case q.Limit < 1 || q.Limit > cfg.maxLimit:
			t.Fatalf("limit %d", q.Limit)
		case len(q.Hashes) > cfg.maxHashes || len(q.ContentTopics) > cfg.maxContentTopics:
			t.Fatalf("%d hashes, %d content topics", len(q.Hashes), len(q.ContentTopics))
		case len(q.Hashes) > 0 && (q.PubsubTopic != "" || len(q.ContentTopics) > 0 || q.Start != 0 || q.End != 0):
			t.Fatal("a lookup with a content filter")
		case (q.PubsubTopic == "") != (len(q.ContentTopics) == 0):
			t.Fatal("a pubsub topic without content topics, or the reverse")
		case q.Start < 0 || q.End < 0:
			t.Fatal("a negative time bound")
		case q.MaxBytes != cfg.maxPageBytes:
			t.Fatalf("page bytes %d", q.MaxBytes)
		}
		if q.Cursor != nil && len(req.PaginationCursor) != 32 {
			t.Fatal("a cursor of the wrong length")
		}
	})
}
