package main

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRunFlagsLetWakuClientsIn(t *testing.T) {
	f, fs, err := parseRunFlags(nil, io.Discard)
	require.NoError(t, err)
	require.Equal(t, edgeFlags{mplex: true, clusterID: 1, shards: 8}, f.edge)
	_, err = f.options(fs)
	require.NoError(t, err)
	require.Empty(t, f.listen, "the defaults are applied to the node, not to the flag")

	f, fs, err = parseRunFlags([]string{"--mplex=false", "--cluster-id", "0", "--shards", "1024",
		"--listen", "/ip4/127.0.0.1/tcp/0/ws"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, edgeFlags{mplex: false, clusterID: 0, shards: 1024}, f.edge)
	require.Equal(t, stringList{"/ip4/127.0.0.1/tcp/0/ws"}, f.listen)
	_, err = f.options(fs)
	require.NoError(t, err)
}

func TestRunFlagsRejectBadWakuSettings(t *testing.T) {
	for _, args := range [][]string{
		{"--shards", "0"}, {"--shards", "1025"}, {"--shards", "-1"},
		{"--cluster-id", "65536"},
	} {
		f, fs, err := parseRunFlags(args, io.Discard)
		require.NoError(t, err, args)
		_, err = f.options(fs)
		require.ErrorIs(t, err, errUsage, args)
	}
	for _, args := range [][]string{{"--cluster-id", "-1"}, {"--cluster-id", "one"}, {"--shards", "x"}, {"--mplex=maybe"}} {
		_, _, err := parseRunFlags(args, io.Discard)
		require.ErrorIs(t, err, errUsage, args)
	}
}
