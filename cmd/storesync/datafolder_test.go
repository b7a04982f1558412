package main

import (
	"path/filepath"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
)

// Where the store keeps what a catch-up or an import resumes from.
const (
	catchUpCursors = "/storesync/resume/catchup"
	importRecords  = "/storesync/resume/import"
)

// withDataFolder opens the store in the data folder of a node that is not
// running, with opts, calls fn, and closes both.
func withDataFolder(t *testing.T, dir string, fn func(d ds.Batching, s *node.Store), opts ...node.StoreOption) {
	t.Helper()
	d, err := node.OpenLevelDB(filepath.Join(dir, "datastore"))
	require.NoError(t, err)
	defer func() { require.NoError(t, d.Close()) }()
	s, err := node.OpenStore(t.Context(), d, opts...)
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	fn(d, s)
}

// keysUnder returns the keys of the records under prefix in d.
func keysUnder(t *testing.T, d ds.Read, prefix string) []string {
	t.Helper()
	res, err := d.Query(t.Context(), dsq.Query{Prefix: prefix, KeysOnly: true})
	require.NoError(t, err)
	entries, err := res.Rest()
	require.NoError(t, err)
	keys := make([]string, len(entries))
	for i, e := range entries {
		keys[i] = e.Key
	}
	return keys
}
