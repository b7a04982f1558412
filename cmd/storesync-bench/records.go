package main

import (
	"context"
	"fmt"

	ds "github.com/ipfs/go-datastore"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// rawWriter is the baseline of store ingest and catch-up: plain batched
// datastore puts of the same records a store keeps, with none of its
// work (no duplicate checks, no tree, no scope record). Every message is
// written as its encoded bytes (m.ToPB().Marshal()) under the key the
// store gives its record (node.RecordKeyOf: the scope, then the
// message's key, timestamp first), so records sort by time as the
// store's do. Like Store.Put, it hashes and encodes each message as it
// writes it, so both start from the same in-memory messages. Not safe
// for concurrent use.
type rawWriter struct {
	d     ds.Batching
	names map[reconcile.Scope]func(reconcile.Key) ds.Key
}

// newRawWriter returns a writer into d.
func newRawWriter(d ds.Batching) *rawWriter {
	return &rawWriter{d: d, names: make(map[reconcile.Scope]func(reconcile.Key) ds.Key)}
}

// write puts msgs in one datastore batch and commits it.
func (w *rawWriter) write(ctx context.Context, msgs []reconcile.Message) error {
	b, err := w.d.Batch(ctx)
	if err != nil {
		return err
	}
	for i := range msgs {
		m := &msgs[i]
		v, err := m.ToPB().Marshal()
		if err != nil {
			return fmt.Errorf("marshal message: %w", err)
		}
		sc := m.Scope()
		name := w.names[sc]
		if name == nil {
			name = node.RecordKeyOf(sc)
			w.names[sc] = name
		}
		if err := b.Put(ctx, name(m.Key()), v); err != nil {
			return err
		}
	}
	return b.Commit(ctx)
}
