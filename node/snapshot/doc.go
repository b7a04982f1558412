// Package snapshot owns the snapshot file format: one scope's messages in
// a file that anyone may publish (HTTP, IPFS, object storage) and anyone
// may import, verifying every byte on the way. It reads and writes bytes
// only: it never touches a store, a tree or the network. The node package
// exports a scope by feeding a Writer from its store and imports one by
// storing what a Reader returns.
//
// Constructors: NewWriter (options WithMaxBatchSize, WithMaxMessageSize,
// WithCompressionLevel, WithCreated) and NewReader (options
// WithMaxBatchSize, WithMaxMessageSize).
//
// # Trust
//
// Nothing in a file is taken on its word. A Reader recomputes every
// message's hash from its content, checks its scope, validity, size and
// key order, and returns io.EOF only when the trailer proves that all the
// batches were read and that they add up to the header's count,
// aggregate and key range. What it cannot prove is that the file holds
// the messages you wanted: anyone can write a consistent file. Compare
// Header.Root with a root you trust (a peer's, the publisher's) before
// relying on the import, or let a sync session finish the job.
//
// # Resuming
//
// Reader.State after each batch is a small value (MarshalBinary) that an
// importer stores atomically with that batch's messages. After a crash,
// Reader.Resume continues from it with the same checks as an uninterrupted
// read, since the state carries the running count, aggregate, last key and
// chain digest; a batch stored twice is the importer's no-op. A state
// names its file by the digest of the header bytes, so it cannot be
// applied to another file (ErrWrongFile).
//
// # Format, version 1
//
// All integers are big-endian unless said otherwise; "uvarint" is an
// unsigned LEB128 varint (encoding/binary.Uvarint) in its shortest form.
// Offsets count from the first byte of the header. A file is a header,
// zero or more batch frames, and a trailer, and nothing after it.
//
// The header (160 bytes plus the two topics; P and C are their lengths):
//
//	off     size  field
//	0       8     magic "SSYNSNAP"
//	8       2     format version, 1
//	10      2     flags, 0 (a reader refuses any other value: ErrFormat)
//	12      2     P, length of the pubsub topic, at least 1
//	14      2     C, length of the content topic, at least 1
//	16      P     pubsub topic
//	16+P    C     content topic
//	T=16+P+C:
//	T       8     creation time, int64 Unix nanoseconds
//	T+8     4     batch limit: no batch's raw content is longer
//	T+12    8     size: the snapshot's length in bytes, header to trailer,
//	              0 until the writer closes
//	T+20    8     message count
//	T+28    32    aggregate sum: the sum of the message hashes, each read as
//	              a little-endian 256-bit integer, mod 2^256, as four
//	              little-endian 64-bit words (reconcile.Sum.Bytes)
//	T+60    40    first key: 8-byte timestamp, 32-byte hash (reconcile.Key.Bytes)
//	T+100   40    last key; first and last are all zero when the count is 0
//	T+140   4     CRC-32C (Castagnoli) of bytes [0, T+140)
//
// The bytes [0, T+12) are the static part, known when the writer starts.
// Size, count, sum and keys are known only at the end: the writer writes
// the header with size 0 first and seeks back to write the final one, so
// a file whose writer died reads as truncated.
//
// A batch frame (45 bytes, then the payload):
//
//	off  size  field
//	0    1     kind 'B' (0x42)
//	1    4     message count n, 1 to 16384 (MaxBatchMessages)
//	5    4     raw length: the payload's decompressed size, at most the
//	           header's batch limit
//	9    4     payload length L, 1 to raw + raw/256 + 64 (room for
//	           zstd's raw blocks, so a reader can refuse L unread)
//	13   32    chain digest D_i = SHA-256(D_{i-1} || bytes [0,13) of this frame || payload)
//	45   L     payload: a zstd frame whose content is the raw batch
//
// with D_0 = SHA-256(the header's static part). The raw batch is the n
// messages in strictly increasing key order, each as
//
//	uvarint  timestamp: for the first message of the batch its value,
//	         for the others the increase over the message before it
//	uvarint  payload length, then the payload
//	uvarint  meta length, then the meta
//
// and nothing after the last. A message's topics are the header's and
// its hash is the Waku deterministic hash of its fields (RFC 14), which a
// reader recomputes: the file can neither mix scopes nor claim a hash.
// Its key is its timestamp and hash (reconcile.Key); its size, the length
// of its pb.Message encoding, is at most the reader's limit.
//
// A writer compresses adaptively, since encrypted payloads (the usual
// Waku case) do not shrink: a batch that zstd shrinks by less than 1/16
// makes the next 15 batches go out untried as zstd frames of raw blocks
// (RFC 8878: magic, descriptor 0xa0 for a single segment with a 4-byte
// content size, the size, then raw blocks of 128 KiB, the last one
// shorter and flagged last), and the batch after them is tried again.
// A reader reads any zstd frame.
//
// The trailer (49 bytes):
//
//	off  size  field
//	0    1     kind 'E' (0x45)
//	1    8     number of batch frames
//	9    8     number of messages
//	17   32    the last chain digest (D_0 when there is no batch)
//
// A reader accepts the file when the trailer ends it exactly at the
// header's size, its counts and digest equal what it read, and the
// messages read have the header's count, sum, first and last key.
//
// Why a SHA-256 chain rather than a CRC per batch: a CRC catches a
// damaged batch but not a dropped, repeated or reordered one, nor one
// spliced in from another snapshot; the chain catches all of these at the
// first batch out of place, binds every batch to its header, and its
// running value is 32 bytes a resumed reader can carry in its State. It
// costs one SHA-256 pass over the compressed bytes, small beside hashing
// every message. It is not a signature: the root is what proves content.
package snapshot
