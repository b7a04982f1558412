package main

import (
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// treeKeysOf returns the keys of a scope's tree, in order.
func treeKeysOf(t *testing.T, s *node.Store, sc reconcile.Scope) []reconcile.Key {
	t.Helper()
	tree, ok := s.Tree(sc)
	require.True(t, ok)
	var keys []reconcile.Key
	require.NoError(t, tree.Iterate(t.Context(), reconcile.Key{}, reconcile.End, func(k reconcile.Key) error {
		keys = append(keys, k)
		return nil
	}))
	return keys
}

// TestCatchUpLoadSurvivesKills: an empty node catching a scope up from
// one peer takes it as one bulk load (its count stays 0 while "loading"
// rises). Killed with SIGKILL at a random moment of the load, each time
// in a fresh data folder, it reopens verified, holding a prefix of the
// peer's keys in key order, and, unless it holds them all, one cursor:
// the next open derives where the stream stopped from the records
// stored. The last folder, restarted, ends with the peer's count and
// root and no cursor.
func TestCatchUpLoadSurvivesKills(t *testing.T) {
	bin := storesyncBinary(t)
	n, kills := 60_000, 6
	sender, sc := senderNode(t, n)
	want, _ := sender.Store().Stats(sc)
	all := treeKeysOf(t, sender.Store(), sc)
	args := []string{"--content-topic", cliTopic, "--peer", sender.Addrs()[0].String()}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	var dir string
	midway := 0
	for kill := range kills {
		dir = filepath.Join(t.TempDir(), "receiver")
		killPast(t, startNode(t, bin, dir, args...), 0, time.Duration(r.IntN(450))*time.Millisecond)
		withDataFolder(t, dir, func(d ds.Batching, s *node.Store) {
			got := treeKeysOf(t, s, sc)
			require.Equal(t, all[:len(got)], got, "kill %d: a prefix of the scope, in key order", kill)
			if len(got) < n {
				midway++
				require.Len(t, keysUnder(t, d, catchUpCursors), 1, "kill %d: midway, the cursor is stored", kill)
			}
			require.Empty(t, keysUnder(t, d, "/storesync/resume/bulk"), "kill %d: the open finished the load", kill)
			t.Logf("kill %d: %d of %d messages stored", kill, len(got), n)
		}, node.WithVerifyOnOpen(true))
	}
	require.GreaterOrEqual(t, midway, kills/2, "most kills must land in the middle of the load")

	finishCatchUp(t, bin, dir, args, sc, want)
}
