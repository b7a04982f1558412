package node

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/reconcile"
)

// TestRecordNamesSortLikeKeys: message records must sort like their keys
// (a scope reads in key order by listing its records), and every name
// must parse back to its key.
func TestRecordNamesSortLikeKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ks := newScopeKeys("0123456789abcdef")
	keys := []reconcile.Key{{}, reconcile.End, reconcile.TimeBound(1), {TS: 1, Hash: reconcile.Hash{0xff}}}
	for range 5000 {
		var k reconcile.Key
		k.TS = r.Uint64() >> r.IntN(64)
		for i := range k.Hash {
			k.Hash[i] = byte(r.IntN(4) * 85) // many shared prefixes
		}
		keys = append(keys, k)
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = ks.msg(k).String()
		require.NotContains(t, strings.TrimPrefix(names[i], ks.msgs), "/")
		back, err := ks.parseMsgKey([]byte(names[i]))
		require.NoError(t, err)
		require.Equal(t, k, back)
	}
	byKey := slices.Clone(keys)
	slices.SortFunc(byKey, func(a, b reconcile.Key) int { return a.Compare(b) })
	slices.Sort(names)
	for i, k := range byKey {
		require.Equal(t, ks.msg(k).String(), names[i])
	}
	_, err := ks.parseMsgKey([]byte(ks.msgs + strings.Repeat("~", keyNameLen)))
	require.ErrorIs(t, err, ErrCorrupt)
	// A name with the unused low bits of its last character set decodes
	// to a key, but is not that key's name: refused, so that no key has
	// two records.
	name := []byte(ks.msg(keys[4]).String())
	name[len(name)-1]++
	_, err = ks.parseMsgKey(name)
	require.ErrorIs(t, err, ErrCorrupt)
}
