package snapshot

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
)

// TestRawFrame checks that a raw frame is a zstd frame any decoder reads
// back to its content, of the size its layout says and within what a
// reader allows (compressBound).
func TestRawFrame(t *testing.T) {
	dec, err := zstd.NewReader(nil)
	require.NoError(t, err)
	defer dec.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 255, 256, 1000, rawBlockMax - 1, rawBlockMax, rawBlockMax + 1, 3*rawBlockMax + 17, 1 << 20} {
		raw := make([]byte, n)
		for i := range raw {
			raw[i] = byte(rng.Uint32())
		}
		frame := appendRawFrame([]byte("head"), raw)[4:]
		blocks := max(1, (n+rawBlockMax-1)/rawBlockMax)
		require.Len(t, frame, 9+3*blocks+n, "%d bytes", n)
		require.LessOrEqual(t, len(frame), compressBound(n), "%d bytes", n)
		got, err := dec.DecodeAll(frame, nil)
		require.NoError(t, err, "%d bytes", n)
		require.True(t, bytes.Equal(raw, got), "%d bytes", n)
	}
}
