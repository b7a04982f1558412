package protocol

import (
	"sync"

	"github.com/klauspost/compress/zstd"
)

// minCompress is the smallest batch worth compressing.
const minCompress = 1024

var (
	encOnce sync.Once
	enc     *zstd.Encoder
)

// compress returns b zstd-compressed if that makes it smaller, else nil.
func compress(b []byte) []byte {
	if len(b) < minCompress {
		return nil
	}
	encOnce.Do(func() {
		enc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	})
	out := enc.EncodeAll(b, make([]byte, 0, len(b)/2))
	if len(out) >= len(b) {
		return nil
	}
	return out
}

// decompress expands a zstd payload that must not exceed limit bytes, so
// that a small hostile payload cannot make us allocate without bound.
func decompress(b []byte, limit int) ([]byte, error) {
	d, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(uint64(limit)), zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(uint64(max(limit, zstd.MinWindowSize))))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	out, err := d.DecodeAll(b, nil)
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, ErrTooLarge
	}
	return out, nil
}
