package node

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// catchUpKey holds the cursors of catch-ups in progress, one record per
// scope and range: /storesync/resume/catchup/<scope ID hex>/<range's Hi
// hex>.
var catchUpKey = resumeKey.ChildString("catchup")

// cursorFormat is the first byte of a cursor record.
const cursorFormat = 1

// cursorKey returns the record key of a cursor of a scope.
func cursorKey(idHex string, hi reconcile.Key) ds.Key {
	return catchUpKey.ChildString(idHex).ChildString(hex.EncodeToString(hi.Bytes()))
}

// encodeCursor serialises what the key does not hold: format, the peer
// ID (uvarint length, bytes), Lo and After (40 bytes each).
func encodeCursor(c protocol.Cursor) []byte {
	b := []byte{cursorFormat}
	b = binary.AppendUvarint(b, uint64(len(c.Peer)))
	b = append(b, c.Peer...)
	b = append(b, c.Lo.Bytes()...)
	return append(b, c.After.Bytes()...)
}

var errBadCursor = errors.New("bad catch-up cursor")

// decodeCursor parses a cursor record of the range ending at hi.
func decodeCursor(hi reconcile.Key, b []byte) (protocol.Cursor, error) {
	c := protocol.Cursor{Hi: hi}
	if len(b) < 1 || b[0] != cursorFormat {
		return c, errBadCursor
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || k != len(binary.AppendUvarint(nil, n)) || n > uint64(len(b)-k) || len(b)-k-int(n) != 2*reconcile.KeySize {
		return c, errBadCursor
	}
	if n > 0 {
		id, err := peer.IDFromBytes(b[k : k+int(n)])
		if err != nil {
			return c, errBadCursor
		}
		c.Peer = id
	}
	b = b[k+int(n):]
	c.Lo, _ = reconcile.KeyFromBytes(b[:reconcile.KeySize])
	c.After, _ = reconcile.KeyFromBytes(b[reconcile.KeySize:])
	if !c.Lo.Less(c.Hi) || c.After.Less(c.Lo) || !c.After.Less(c.Hi) {
		return c, errBadCursor
	}
	return c, nil
}

// writeCursors returns the writes that save cursors of a scope, deleting
// the finished ones.
func writeCursors(idHex string, curs []protocol.Cursor) writeFunc {
	return func(ctx context.Context, w ds.Write) error {
		for _, c := range curs {
			k := cursorKey(idHex, c.Hi)
			if c.Done {
				if err := w.Delete(ctx, k); err != nil {
					return err
				}
				continue
			}
			if err := w.Put(ctx, k, encodeCursor(c)); err != nil {
				return err
			}
		}
		return nil
	}
}

// cursors returns the saved cursors of a scope, by their ranges' keys.
func (s *Store) cursors(ctx context.Context, st *scopeState) ([]protocol.Cursor, error) {
	prefix := catchUpKey.ChildString(st.idHex)
	res, err := s.d.Query(ctx, dsq.Query{Prefix: prefix.String(), Orders: []dsq.Order{dsq.OrderByKey{}}})
	if err != nil {
		return nil, err
	}
	entries, err := res.Rest()
	if err != nil {
		return nil, err
	}
	out := make([]protocol.Cursor, 0, len(entries))
	for _, e := range entries {
		k := ds.RawKey(e.Key)
		raw, err := hex.DecodeString(k.BaseNamespace())
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, k, errBadCursor)
		}
		hi, err := reconcile.KeyFromBytes(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, k, errBadCursor)
		}
		c, err := decodeCursor(hi, e.Value)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, k, err)
		}
		out = append(out, c)
	}
	return out, nil
}
