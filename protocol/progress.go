package protocol

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/reconcile"
)

// ProgressKind says what a Progress measures.
type ProgressKind string

// The kinds of transfer that report progress.
const (
	// ProgressFetch: messages a session found missing, fetched by hash.
	ProgressFetch ProgressKind = "fetch"
	// ProgressCatchUp: a scope streamed in key order from one peer or
	// several (Service.CatchUp).
	ProgressCatchUp ProgressKind = "catch-up"
	// ProgressImport: a snapshot file read into the store.
	ProgressImport ProgressKind = "import"
)

// Progress reports how far the transfer of one scope has come.
type Progress struct {
	Kind ProgressKind
	// Peer is the peer messages come from; empty for an import, and the
	// latest one when several peers serve a catch-up.
	Peer  peer.ID
	Scope reconcile.Scope
	// Done of Total messages: verified and stored or rejected for a
	// fetch; streamed (stored, or already held) for a catch-up or an
	// import, of what the peers' counts or the file's header expect.
	Done, Total int
	// Bytes on the wire, or read from the file, for the scope so far.
	Bytes int64
}

type progressKey struct{}

// WithProgress returns a context under which Sync, CatchUp and a node's
// import report transfer progress to fn after every batch. fn may be
// called from several goroutines at once (a catch-up from several peers)
// and must be quick.
func WithProgress(ctx context.Context, fn func(Progress)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// ReportProgress hands p to the progress function of ctx (WithProgress),
// if it has one. It serves transfers outside this package, such as a
// node's import, so that one progress function sees them all.
func ReportProgress(ctx context.Context, p Progress) { progressOf(ctx)(p) }

// progressOf returns the progress function of ctx, or one that does
// nothing.
func progressOf(ctx context.Context) func(Progress) {
	if fn, ok := ctx.Value(progressKey{}).(func(Progress)); ok && fn != nil {
		return fn
	}
	return func(Progress) {}
}
