package protocol

import (
	"errors"
	"fmt"
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

// pays reports whether z, n bytes compressed by compress, is worth the
// server's CPU: it shrank them by a quarter.
func pays(n int, z []byte) bool { return z != nil && len(z) <= n-n/4 }

// errBadZstd is wrapped by a payload that does not decode.
var errBadZstd = errors.New("malformed zstd payload")

// decoders holds one zstd decoder per limit (*zstd.Decoder by int): a
// decoder owns buffers as large as its window, too costly to make per
// batch. DecodeAll is safe for concurrent use; a decoder of concurrency 1
// serves one call at a time, which decoding at memory speed affords.
var decoders sync.Map

// decoder returns the shared decoder for payloads of at most limit bytes.
func decoder(limit int) (*zstd.Decoder, error) {
	if d, ok := decoders.Load(limit); ok {
		return d.(*zstd.Decoder), nil
	}
	d, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(uint64(limit)), zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(uint64(max(limit, zstd.MinWindowSize))))
	if err != nil {
		return nil, err
	}
	if prev, loaded := decoders.LoadOrStore(limit, d); loaded {
		d.Close()
		return prev.(*zstd.Decoder), nil
	}
	return d, nil
}

// decompress expands a zstd payload that must not exceed limit bytes, so
// that a small hostile payload cannot make us allocate without bound. A
// payload over the limit is ErrTooLarge, one that does not decode wraps
// errBadZstd.
func decompress(b []byte, limit int) ([]byte, error) {
	d, err := decoder(limit)
	if err != nil {
		return nil, err
	}
	out, err := d.DecodeAll(b, nil)
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded),
		errors.Is(err, zstd.ErrFrameSizeExceeded):
		return nil, ErrTooLarge
	case err != nil:
		return nil, fmt.Errorf("%w: %w", errBadZstd, err)
	}
	if len(out) > limit {
		return nil, ErrTooLarge
	}
	return out, nil
}
