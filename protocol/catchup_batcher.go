package protocol

import (
	"encoding/binary"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/reconcile"
)

// probeEvery is how many batches a catch-up stream sends uncompressed
// after one whose compression did not pay, before it tries again.
const probeEvery = 16

// probeSample is how much of a large batch is compressed first, to tell
// whether compressing the whole would pay: a stream of encrypted
// payloads, the usual case, then costs the server a 64 KiB try per probe
// rather than a whole batch's.
const probeSample = 64 << 10

// batcher gathers stored messages into catch-up batches. The stored form
// of a message is its pb.Message encoding, so a batch's MessageBatch
// encoding is built by framing the records as they are, without decoding
// them, and sent as it is. It compresses where that pays for the CPU it
// costs: a batch must shrink by a quarter (judged on its first
// probeSample bytes first), and after one that does not the next
// probeEvery go uncompressed. Encrypted payloads, the usual case, do not
// compress, and the topics that a client taking whole messages makes the
// server repeat save about a tenth: not worth a server's CPU.
type batcher struct {
	s     *Service
	c     *conn
	peer  peer.ID // charged for what is sent (Service.volume)
	zstd  bool
	bare  bool // the client takes messages without their topics
	limit int
	scope reconcile.Scope
	buf   []byte
	size  int // message bytes in buf
	count int
	skip  int // batches to send before compressing again
}

// add appends one message (its pb.Message bytes) as a MessageBatch field.
func (b *batcher) add(raw []byte) {
	b.buf = append(b.buf, 0x0a) // field 1 (messages), length-delimited
	b.buf = binary.AppendUvarint(b.buf, uint64(len(raw)))
	b.buf = append(b.buf, raw...)
	b.size += len(raw) + 8
	b.count++
}

// flush sends what is gathered as one batch; done says that no message
// of the range follows.
func (b *batcher) flush(done bool) error {
	f := &batchFrame{done: done}
	if len(b.buf) > 0 {
		f.batch = b.buf
	}
	if z := b.compressed(); z != nil {
		f.zstd, f.batch = z, nil
	}
	if err := b.c.writeParts(f.parts()...); err != nil {
		return err
	}
	if err := b.c.flush(); err != nil {
		return err
	}
	if m := b.s.cfg.metrics; m != nil && b.count > 0 {
		m.MessagesSent(b.scope.String(), b.count)
	}
	b.s.volume.charge(b.peer, b.scope, b.count)
	b.buf, b.size, b.count = b.buf[:0], 0, 0
	return nil
}

// compressed returns the gathered batch zstd-compressed, or nil to send
// it as it is: the client does not take zstd, the batch is empty, a
// recent batch did not shrink by a quarter, or this one does not.
func (b *batcher) compressed() []byte {
	if !b.zstd || len(b.buf) == 0 {
		return nil
	}
	if b.skip > 0 {
		b.skip--
		return nil
	}
	if len(b.buf) > 2*probeSample && !pays(probeSample, compress(b.buf[:probeSample])) {
		b.skip = probeEvery
		return nil
	}
	z := compress(b.buf)
	if !pays(len(b.buf), z) {
		b.skip = probeEvery
		return nil
	}
	return z
}

// withoutTopics returns a stored pb.Message encoding without its pubsub
// and content topics (fields 1 and 2). The store writes them first, so
// this is a suffix of raw, no copy; raw comes back whole if they are not
// the leading fields, which still serves a client that takes bare
// messages.
func withoutTopics(raw []byte) []byte {
	rest := raw
	for len(rest) > 0 && (rest[0] == 0x0a || rest[0] == 0x12) { // fields 1, 2; length-delimited
		n, w := binary.Uvarint(rest[1:])
		if w <= 0 || n > uint64(len(rest)-1-w) {
			return raw
		}
		rest = rest[1+w+int(n):]
	}
	return rest
}

// batchFrame is a pb.CatchUpBatch whose batch field holds MessageBatch
// bytes as they are, written straight to the stream rather than copied
// into an encoded message first: a catch-up moves every byte once.
type batchFrame struct {
	batch []byte // MessageBatch encoding, or nil
	zstd  []byte
	done  bool
}

// parts returns the encoding of the pb.CatchUpBatch with the same fields,
// in pieces: field headers and the fields' bytes, not copied.
func (f *batchFrame) parts() [][]byte {
	var out [][]byte
	field := func(tag byte, b []byte) {
		out = append(out, binary.AppendUvarint([]byte{tag}, uint64(len(b))), b)
	}
	if f.batch != nil {
		field(0x0a, f.batch) // field 1, length-delimited
	}
	if len(f.zstd) > 0 {
		field(0x12, f.zstd) // field 2, length-delimited
	}
	if f.done {
		out = append(out, []byte{0x18, 1}) // field 3, varint true
	}
	return out
}
