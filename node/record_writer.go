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
	key, val []byte
}

// newRecordWriter returns a writer into b.
func newRecordWriter(b ds.Write) *recordWriter {
	w := &recordWriter{b: b}
	w.raw, _ = b.(bytesPutter)
	return w
}

// put writes m, whose key is k, as a record of the scope with keys ks.
func (w *recordWriter) put(ctx context.Context, ks scopeKeys, k reconcile.Key, m *reconcile.Message) error {
	pm := m.ToPB()
	if w.raw == nil {
		data, err := pm.Marshal()
		if err != nil {
			return err
		}
		return w.b.Put(ctx, ks.msg(k), data)
	}
	n := pm.Size()
	w.val = slices.Grow(w.val[:0], n)[:n]
	if _, err := pm.MarshalToSizedBuffer(w.val); err != nil {
		return err
	}
	w.key = ks.appendMsg(w.key[:0], k)
	return w.raw.putBytes(w.key, w.val)
}
