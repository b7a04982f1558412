package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = dispatch(t.Context(), args, stdio{in: strings.NewReader(""), out: &o, err: &e})
	return o.String(), e.String(), code
}

func TestHashCommandPrintsSpecVector(t *testing.T) {
	out, _, code := run(t, "hash", "--pubsub-topic", "/waku/2/default-waku/proto",
		"--content-topic", "/waku/2/default-content/proto", "--payload-hex", "010203045445535405060708",
		"--meta-hex", "73757065722d736563726574", "--timestamp", "1681964442000000000")
	require.Equal(t, 0, code)
	require.Equal(t, "64cce733fed134e83da02b02c6f689814872b1a0ac97ea56b76095c3c72bfe05\n", out)
}

func TestHashCommandRejectsBadHex(t *testing.T) {
	_, errOut, code := run(t, "hash", "--payload-hex", "zz")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--payload-hex")
}

func TestUnknownCommand(t *testing.T) {
	_, errOut, code := run(t, "frobnicate")
	require.Equal(t, 2, code)
	require.True(t, strings.Contains(errOut, "unknown command"))
}
