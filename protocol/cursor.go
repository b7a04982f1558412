package protocol

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/reconcile"
)

// Cursor is the saved progress of a catch-up of one key range of a scope
// (Service.CatchUp): the range's messages with keys up to After are
// stored, and a restart asks for the rest, (After, Hi), rather than
// starting over. A store saves it in the same commit as the batch that
// moved it (CatchUpStore.PutCatchUp), so that the two never disagree,
// and a batch received twice changes nothing.
//
// The ranges of one scope's cursors never overlap, so Hi identifies a
// cursor within its scope.
type Cursor struct {
	// Peer is the peer the range is streamed from (the last one, if it
	// moved to another after a failure).
	Peer peer.ID
	// Lo and Hi bound the range: keys above Lo and below Hi. Lo is
	// exclusive, as the key of a stored message never equals a bound cut
	// between timestamps (reconcile.TimeBound) or the zero Key.
	Lo, Hi reconcile.Key
	// After is the last key of the range stored so far; Lo before the
	// first batch.
	After reconcile.Key
	// Done marks a finished range: PutCatchUp deletes its cursor.
	Done bool
}

// remaining reports whether the range has keys left above After.
func (c *Cursor) remaining() bool { return !c.Done && c.After.Less(c.Hi) }
