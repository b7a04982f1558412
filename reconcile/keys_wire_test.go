package reconcile_test

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/reconcile"
)

func TestKeyListRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var keys []reconcile.Key
	for range 500 {
		k := reconcile.Key{TS: 1 + r.Uint64N(reconcile.MaxTimestamp)}
		if r.IntN(4) == 0 && len(keys) > 0 {
			k.TS = keys[r.IntN(len(keys))].TS // equal timestamps, order by hash
		}
		for i := range k.Hash {
			k.Hash[i] = byte(r.Uint32())
		}
		keys = append(keys, k)
	}
	keys = reconcile.NewSliceSet(keys)
	b := reconcile.AppendKeys(nil, keys)
	require.Equal(t, len(b), reconcile.KeysSize(keys))
	got, err := reconcile.ParseKeys(b, len(keys))
	require.NoError(t, err)
	require.Equal(t, []reconcile.Key(keys), got)
	_, err = reconcile.ParseKeys(b, len(keys)-1)
	require.ErrorIs(t, err, reconcile.ErrTooManyKeys, "more keys than allowed")

	// Out of order, repeated, truncated, or a zero timestamp: refused.
	swapped := slices.Clone([]reconcile.Key(keys[:2]))
	swapped[0], swapped[1] = swapped[1], swapped[0]
	for _, bad := range [][]byte{
		reconcile.AppendKeys(nil, swapped),
		reconcile.AppendKeys(nil, []reconcile.Key{keys[0], keys[0]}),
		b[:len(b)-1],
		reconcile.AppendKeys(nil, []reconcile.Key{{Hash: reconcile.Hash{1}}}),
		append([]byte{0x80, 0x00}, make([]byte, 32)...), // a varint not minimal
	} {
		_, err := reconcile.ParseKeys(bad, 1000)
		require.ErrorIs(t, err, reconcile.ErrBadKeyList)
	}
}

func FuzzParseKeys(f *testing.F) {
	f.Add(reconcile.AppendKeys(nil, []reconcile.Key{{TS: 5, Hash: reconcile.Hash{1}}, {TS: 5, Hash: reconcile.Hash{2}}, {TS: 9}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := reconcile.ParseKeys(b, 64)
		if err != nil {
			if !errors.Is(err, reconcile.ErrTooManyKeys) {
				require.ErrorIs(t, err, reconcile.ErrBadKeyList)
			}
			return
		}
		require.LessOrEqual(t, len(keys), 64)
		for i := range keys {
			require.NotZero(t, keys[i].TS)
			require.LessOrEqual(t, keys[i].TS, uint64(reconcile.MaxTimestamp))
			if i > 0 {
				require.True(t, keys[i-1].Less(keys[i]))
			}
		}
		require.Equal(t, string(b), string(reconcile.AppendKeys(nil, keys)), "one encoding per list")
	})
}
