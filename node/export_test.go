package node

import (
	"context"

	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// EncodeScopeRecord and DecodeScopeRecord give the external tests the
// scope record codec, which is internal.
func EncodeScopeRecord(sc reconcile.Scope, agg reconcile.Aggregate) []byte {
	return (&scopeRecord{scope: sc, agg: agg}).encode()
}

func DecodeScopeRecord(b []byte) (reconcile.Scope, reconcile.Aggregate, error) {
	r, err := decodeScopeRecord(b)
	return r.scope, r.agg, err
}

// SetBulkNodeBytes sets how many bytes of tree nodes a one-pass import
// holds before writing them, for a test, and restores it when the test
// ends; such a test must not run in parallel.
func SetBulkNodeBytes(t interface{ Cleanup(func()) }, n int) {
	old := bulkNodeBytes
	bulkNodeBytes = n
	t.Cleanup(func() { bulkNodeBytes = old })
}

// CatchUpCursors returns the saved catch-up cursors of a scope, as the
// protocol reads them.
func CatchUpCursors(s *Store, ctx context.Context, sc reconcile.Scope) ([]protocol.Cursor, error) {
	return protocolStore{s}.Cursors(ctx, sc)
}
