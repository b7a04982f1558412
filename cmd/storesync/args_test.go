package main

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/reconcile"
)

func TestStringListCollectsRepeatedFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var l stringList
	fs.Var(&l, "topic", "")
	require.NoError(t, fs.Parse([]string{"--topic", "/a", "-topic=/b", "--topic", "/c"}))
	require.Equal(t, stringList{"/a", "/b", "/c"}, l)
	require.Equal(t, "/a,/b,/c", l.String())
	require.Error(t, fs.Parse([]string{"--topic", ""}), "an empty value is a mistake, not a scope")
}

func TestParseInterleavedTakesPositionalsAnywhere(t *testing.T) {
	cases := []struct {
		args []string
		pos  []string
		data string
		json bool
	}{
		{[]string{"--data", "d", "PEER"}, []string{"PEER"}, "d", false},
		{[]string{"PEER", "--data", "d", "--json"}, []string{"PEER"}, "d", true},
		{[]string{"--json", "PEER", "--data", "d"}, []string{"PEER"}, "d", true},
		{[]string{"A", "B"}, []string{"A", "B"}, "", false},
		{[]string{"--data", "d", "--", "--json"}, []string{"--json"}, "d", false},
		{nil, nil, "", false},
	}
	for _, c := range cases {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		data := fs.String("data", "", "")
		asJSON := fs.Bool("json", false, "")
		pos, err := parseInterleaved(fs, c.args)
		require.NoError(t, err, c.args)
		require.Equal(t, c.pos, pos, c.args)
		require.Equal(t, c.data, *data, c.args)
		require.Equal(t, c.json, *asJSON, c.args)
	}
}

func TestParseInterleavedReportsBadFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	_, err := parseInterleaved(fs, []string{"PEER", "--nope"})
	require.ErrorIs(t, err, errUsage)
	_, err = parseInterleaved(fs, []string{"-h"})
	require.ErrorIs(t, err, flag.ErrHelp)
}

func TestParseTime(t *testing.T) {
	ns, err := parseTime("2026-01-02T03:04:05Z")
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano(), ns)

	ns, err = parseTime("2026-01-02T04:04:05.000000123+01:00")
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 1, 2, 3, 4, 5, 123, time.UTC).UnixNano(), ns)

	ns, err = parseTime("1681964442000000000")
	require.NoError(t, err)
	require.Equal(t, int64(1681964442000000000), ns)

	for _, bad := range []string{"", "yesterday", "2026-01-02", "-5", "99999999999999999999", "1969-12-31T23:59:59Z"} {
		_, err := parseTime(bad)
		require.Error(t, err, bad)
	}
}

func TestFormatTime(t *testing.T) {
	require.Equal(t, "-", formatTime(0))
	require.Equal(t, "2023-04-20T04:20:42Z", formatTime(1681964442000000000))
	require.Equal(t, "2023-04-20T04:20:42.000000001Z", formatTime(1681964442000000001))
}

func TestCursorRoundTrip(t *testing.T) {
	k := reconcile.Key{TS: 1681964442000000000, Hash: reconcile.MessageHash("/p", "/c", []byte("x"), nil, 1)}
	s := formatCursor(k)
	require.Len(t, s, 2*reconcile.KeySize)
	got, err := parseCursor(s)
	require.NoError(t, err)
	require.Equal(t, k, got)

	require.Empty(t, formatCursor(reconcile.Key{}), "the start has no cursor")
	got, err = parseCursor("")
	require.NoError(t, err)
	require.Equal(t, reconcile.Key{}, got)

	_, err = parseCursor("zz")
	require.ErrorContains(t, err, "not hex")
	_, err = parseCursor(s[:20])
	require.ErrorContains(t, err, "10 bytes")
}
