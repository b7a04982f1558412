package node

import (
	"context"
	"slices"

	ds "github.com/ipfs/go-datastore"

	"github.com/storesync/storesync/reconcile"
)

// bytesPutter is a batch that takes keys as bytes and copies what it is
// given, so that its caller may reuse both buffers at once: LevelDB's.
type bytesPutter interface {
	putBytes(k, v []byte) error
}

// recordWriter writes message records into one batch. Over a batch that
// copies (bytesPutter) it encodes each key and value into buffers it
// reuses; over any other, into new ones, which the batch may keep.
type recordWriter struct {
	b        ds.Write
	raw      bytesPutter // b, when it copies
	index    bool        // write hash index records too
	key, val []byte
}

// newRecordWriter returns a writer into b, which writes the hash index
// records of the messages too if index is set.
func newRecordWriter(b ds.Write, index bool) *recordWriter {
	w := &recordWriter{b: b, index: index}
	w.raw, _ = b.(bytesPutter)
	return w
}

// put writes m, whose key is k, as a record of the scope with ID id and
// keys ks, with its hash index record if the writer keeps the index.
func (w *recordWriter) put(ctx context.Context, id [8]byte, ks scopeKeys, k reconcile.Key, m *reconcile.Message) error {
	pm := m.ToPB()
	if w.raw == nil {
		data, err := pm.Marshal()
		if err != nil {
			return err
		}
		if err := w.b.Put(ctx, ks.msg(k), data); err != nil || !w.index {
			return err
		}
		return w.b.Put(ctx, indexKey(&k.Hash), appendIndexValue(nil, id, k.TS))
	}
	n := pm.Size()
	w.val = slices.Grow(w.val[:0], n)[:n]
	if _, err := pm.MarshalToSizedBuffer(w.val); err != nil {
		return err
	}
	w.key = ks.appendMsg(w.key[:0], k)
	if err := w.raw.putBytes(w.key, w.val); err != nil || !w.index {
		return err
	}
	w.key = appendIndexKey(w.key[:0], &k.Hash)
	w.val = appendIndexValue(w.val[:0], id, k.TS)
	return w.raw.putBytes(w.key, w.val)
}
