package node

import (
	"context"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// FuzzBulkRecord decodes arbitrary bytes as a bulk record, and opens a
// store that holds them as the bulk record of the fuzz scope. Only what
// bulkRecord.encode writes decodes, and encodes back to the same bytes;
// a catch-up's range is a valid cursor. Opening fails with ErrCorrupt on
// a record that does not decode or names another scope; otherwise it
// keeps the scope, deletes the bulk record and, for a catch-up that had
// moved, saves its cursor, within its range.
func FuzzBulkRecord(f *testing.F) {
	f.Fuzz(func(t *testing.T, rec []byte) {
		r, err := decodeBulkRecord(rec)
		if err == nil {
			require.Equal(t, rec, r.encode(), "one encoding per record")
			if c := r.catchUp; c != nil {
				require.True(t, c.Lo.Less(c.Hi))
				require.False(t, c.After.Less(c.Lo))
				require.True(t, c.After.Less(c.Hi))
			}
		}

		ctx := context.Background()
		d := dssync.MutexWrap(ds.NewMapDatastore())
		id := recordFuzzScope.ID()
		require.NoError(t, d.Put(ctx, bulkRecordKey(scopeIDHex(id)), rec))
		s, oerr := OpenStore(ctx, d)
		if err != nil || r.scope != recordFuzzScope {
			require.ErrorIs(t, oerr, ErrCorrupt)
			return
		}
		require.NoError(t, oerr)
		defer s.Close()
		require.Equal(t, []reconcile.Scope{recordFuzzScope}, s.Scopes())
		_, gerr := d.Get(ctx, bulkRecordKey(scopeIDHex(id)))
		require.ErrorIs(t, gerr, ds.ErrNotFound)
		curs, cerr := protocolStore{s}.Cursors(ctx, recordFuzzScope)
		require.NoError(t, cerr)
		if c := r.catchUp; c != nil && c.After != c.Lo {
			// Nothing stored: the cursor is where the load began.
			require.Equal(t, []protocol.Cursor{*c}, curs)
		} else {
			require.Empty(t, curs)
		}
		res, qerr := d.Query(ctx, dsq.Query{Prefix: bulksKey.String(), KeysOnly: true})
		require.NoError(t, qerr)
		left, qerr := res.Rest()
		require.NoError(t, qerr)
		require.Empty(t, left)
	})
}

// bulkRecordSeeds are FuzzBulkRecord's seeds: an import's record, a
// catch-up's from the start and resumed, with a live key and a peer,
// one of another scope, and damaged ones.
func bulkRecordSeeds(t testing.TB) map[string][]any {
	lo, hi := reconcile.TimeBound(1000), reconcile.TimeBound(2000)
	after := reconcile.Key{TS: 1500, Hash: reconcile.Hash{0xab}}
	p := recordFuzzPeer(t, 2)
	imp := (&bulkRecord{scope: recordFuzzScope}).encode()
	fresh := (&bulkRecord{scope: recordFuzzScope, catchUp: &protocol.Cursor{Lo: lo, Hi: hi, After: lo}}).encode()
	resumed := (&bulkRecord{scope: recordFuzzScope, catchUp: &protocol.Cursor{Peer: p, Lo: lo, Hi: hi, After: after},
		live: reconcile.Key{TS: 1700, Hash: reconcile.Hash{1}}}).encode()
	whole := (&bulkRecord{scope: recordFuzzScope, catchUp: &protocol.Cursor{Lo: reconcile.Key{}, Hi: reconcile.End}}).encode()
	other := (&bulkRecord{scope: reconcile.Scope{PubsubTopic: "/a", ContentTopic: "/b"},
		catchUp: &protocol.Cursor{Lo: lo, Hi: hi, After: lo}}).encode()
	return map[string][]any{
		"import":        {imp},
		"fresh":         {fresh},
		"resumed":       {resumed},
		"whole":         {whole},
		"other-scope":   {other},
		"truncated":     {resumed[:len(resumed)-1]},
		"after-past-hi": {(&bulkRecord{scope: recordFuzzScope, catchUp: &protocol.Cursor{Lo: lo, Hi: hi, After: reconcile.End}}).encode()},
		"aggregate":     {scopeRecordWithCount(recordFuzzScope)},
		"empty":         {[]byte{}},
	}
}

// scopeRecordWithCount is a scope record with an aggregate, which no
// bulk record holds.
func scopeRecordWithCount(sc reconcile.Scope) []byte {
	return (&scopeRecord{scope: sc, agg: reconcile.Aggregate{Count: 1}}).encode()
}
