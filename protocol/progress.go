package protocol

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/reconcile"
)

// Progress reports how far the transfer of one scope has come.
type Progress struct {
	Peer  peer.ID
	Scope reconcile.Scope
	// Done of Total messages fetched (verified or rejected).
	Done, Total int
	// Bytes on the wire for the scope so far.
	Bytes int64
}

type progressKey struct{}

// WithProgress returns a context under which Sync reports transfer
// progress to fn after every batch. fn runs on the syncing goroutine and
// must be quick.
func WithProgress(ctx context.Context, fn func(Progress)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// progressOf returns the progress function of ctx, or one that does
// nothing.
func progressOf(ctx context.Context) func(Progress) {
	if fn, ok := ctx.Value(progressKey{}).(func(Progress)); ok && fn != nil {
		return fn
	}
	return func(Progress) {}
}
