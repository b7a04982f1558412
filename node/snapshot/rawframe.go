package snapshot

import "encoding/binary"

// A batch that zstd cannot shrink (encrypted payloads, the usual Waku
// case) is written as a zstd frame of raw blocks (RFC 8878, section
// 3.1.1): any zstd decoder reads it, so the format is unchanged, and
// writing it is a copy. The writer writes one without trying to
// compress while compression does not pay (writer.go, flush).
const (
	zstdMagic = 0xFD2FB528
	// rawFrameDescriptor is the frame header descriptor of a raw frame:
	// a 4-byte content size (flag 2) and a single segment, so no window
	// descriptor; no checksum, no dictionary.
	rawFrameDescriptor = 2<<6 | 1<<5
	// rawBlockMax is the largest zstd block.
	rawBlockMax = 128 << 10
)

// appendRawFrame appends a zstd frame whose content is raw, stored in
// raw blocks of rawBlockMax bytes, the last one shorter: 9 bytes of
// frame header, then 3 bytes of block header (last-block bit, block
// type 0 for raw, size; little-endian) before each block.
func appendRawFrame(b, raw []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, zstdMagic)
	b = append(b, rawFrameDescriptor)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(raw)))
	for {
		n := min(len(raw), rawBlockMax)
		h := uint32(n) << 3 // block type 0: raw
		if n == len(raw) {
			h |= 1 // last block
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16))
		b = append(b, raw[:n]...)
		if raw = raw[n:]; h&1 == 1 {
			return b
		}
	}
}
