package main

import (
	"context"
	"encoding/hex"
	"fmt"

	ds "github.com/ipfs/go-datastore"

	"github.com/storesync/storesync/reconcile"
)

// rawWriter is the baseline of store ingest and catch-up: plain batched
// datastore puts of the same records a store keeps, with none of its
// work (no duplicate checks, no tree, no scope record). Every message is
// written as its encoded bytes (m.ToPB().Marshal()) under
// /raw/<scope ID hex>/<hex of reconcile.Key.Bytes()>: timestamp, then
// hash, so records sort by time. Like Store.Put, it hashes and encodes
// each message as it writes it, so both start from the same in-memory
// messages. Not safe for concurrent use.
type rawWriter struct {
	d   ds.Batching
	key []byte // reused key buffer
}

// newRawWriter returns a writer into d.
func newRawWriter(d ds.Batching) *rawWriter { return &rawWriter{d: d} }

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
		id := m.Scope().ID()
		k := append(w.key[:0], "/raw/"...)
		k = hex.AppendEncode(k, id[:])
		k = append(k, '/')
		k = hex.AppendEncode(k, m.Key().Bytes())
		w.key = k
		// The key is clean by construction, so RawKey skips the path
		// cleaning of NewKey.
		if err := b.Put(ctx, ds.RawKey(string(k)), v); err != nil {
			return err
		}
	}
	return b.Commit(ctx)
}
