package node

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// bulkRecord is the value of a bulk record (snapshot_bulk.go): the scope a
// bulk load restores and, for a catch-up (catchup_load.go), the range it
// streams, with After where the load began, and the least key that
// reached the scope by other ways while it ran (live; the zero Key when
// none did). From those OpenStore finds how far a catch-up a crash cut
// short came (catchUpCursorAfterCrash).
type bulkRecord struct {
	scope   reconcile.Scope
	catchUp *protocol.Cursor
	live    reconcile.Key
}

// bulkCatchUpFormat is the first byte of the bulk record of a catch-up;
// that of an import is an encoded scopeRecord with no aggregate, which
// starts with recordFormat.
const bulkCatchUpFormat = 0x43

// encode serialises the record: an import's as its scope's record with
// no aggregate; a catch-up's as bulkCatchUpFormat, the scope's record
// (uvarint length, bytes), Hi and live (40 bytes each), then the cursor
// (encodeCursor).
func (r *bulkRecord) encode() []byte {
	rec := (&scopeRecord{scope: r.scope}).encode()
	if r.catchUp == nil {
		return rec
	}
	b := []byte{bulkCatchUpFormat}
	b = binary.AppendUvarint(b, uint64(len(rec)))
	b = append(b, rec...)
	b = append(b, r.catchUp.Hi.Bytes()...)
	b = append(b, r.live.Bytes()...)
	return append(b, encodeCursor(*r.catchUp)...)
}

var errBadBulkRecord = errors.New("bad bulk record")

// decodeBulkRecord parses the output of encode, and only that.
func decodeBulkRecord(b []byte) (bulkRecord, error) {
	var r bulkRecord
	if len(b) == 0 || b[0] != bulkCatchUpFormat {
		rec, err := decodeScopeRecord(b)
		if err != nil {
			return r, err
		}
		if rec.agg != (reconcile.Aggregate{}) {
			return r, fmt.Errorf("%w: an aggregate", errBadBulkRecord)
		}
		r.scope = rec.scope
		return r, nil
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || k != len(binary.AppendUvarint(nil, n)) || n > uint64(len(b)-k) {
		return r, fmt.Errorf("%w: scope length", errBadBulkRecord)
	}
	rec, err := decodeScopeRecord(b[k : k+int(n)])
	if err != nil {
		return r, err
	}
	if rec.agg != (reconcile.Aggregate{}) {
		return r, fmt.Errorf("%w: an aggregate", errBadBulkRecord)
	}
	b = b[k+int(n):]
	if len(b) < 2*reconcile.KeySize {
		return r, fmt.Errorf("%w: short", errBadBulkRecord)
	}
	hi, _ := reconcile.KeyFromBytes(b[:reconcile.KeySize])
	live, _ := reconcile.KeyFromBytes(b[reconcile.KeySize : 2*reconcile.KeySize])
	cur, err := decodeCursor(hi, b[2*reconcile.KeySize:])
	if err != nil {
		return r, fmt.Errorf("%w: %w", errBadBulkRecord, err)
	}
	r.scope, r.catchUp, r.live = rec.scope, &cur, live
	return r, nil
}
