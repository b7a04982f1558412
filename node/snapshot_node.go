package node

import (
	"context"

	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/reconcile"
)

// Export writes a kept scope to a snapshot file at path, as
// Store.ExportFile does, and counts what it wrote in the node's metrics
// (WithMetrics).
func (n *Node) Export(ctx context.Context, sc reconcile.Scope, path string, opts ...snapshot.Option) (snapshot.Header, error) {
	return n.store.exportFile(ctx, sc, path, n.snapshotObserver(), opts)
}

// Import stores the messages of the snapshot file at path, as
// Store.ImportFile does, and counts what it stored in the node's metrics
// (WithMetrics). The messages are not announced to sync groups as recent
// ones, which a large import would flood; the groups' periodic
// announcements carry the scope's new root.
func (n *Node) Import(ctx context.Context, path string, opts ...snapshot.Option) (ImportReport, error) {
	return n.store.importFile(ctx, path, n.snapshotObserver(), opts)
}

// snapshotObserver returns the node's snapshot metrics, or nil for none
// (a nil *snapshotMetrics must not become a non-nil interface).
func (n *Node) snapshotObserver() snapshotObserver {
	if n.snapshots == nil {
		return nil
	}
	return n.snapshots
}
