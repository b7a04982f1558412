package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/storesync/storesync/reconcile"
)

// rawStreamID is the bench's own protocol for the raw stream copy: the
// sender writes every message's encoded bytes (m.ToPB().Marshal()), each
// after its length as a uvarint, and closes; the receiver reads and
// discards them. It is the floor of moving the same bytes between the
// same two kinds of host.
const rawStreamID protocol.ID = "/storesync-bench/raw-copy/1.0.0"

// Raw stream limits: the largest message the reader accepts, and its
// read buffer.
const (
	maxRawMessage = 1 << 20
	rawBuffer     = 64 << 10
)

// rawCopy is what the receiver of a raw stream read.
type rawCopy struct {
	msgs    int
	bytes   int64
	seconds float64 // first byte to last
	err     error
}

// runRawStreamReceiver is the raw-stream child: a host like a node's
// that takes one raw stream from the sender after connecting to it, and
// reports how long the bytes took from first to last.
func runRawStreamReceiver(ctx context.Context, a childArgs) (res childResult, err error) {
	sender, err := peer.AddrInfoFromString(a.sender)
	if err != nil {
		return res, fmt.Errorf("bad -sender: %w", err)
	}
	h, err := libp2p.New(libp2p.ListenAddrStrings(loopback))
	if err != nil {
		return res, err
	}
	defer h.Close()
	got := make(chan rawCopy, 1)
	// The handler is set before connecting: the sender opens the stream
	// as soon as it sees the connection.
	h.SetStreamHandler(rawStreamID, func(s network.Stream) { got <- readRawCopy(s) })
	if err := h.Connect(ctx, *sender); err != nil {
		return res, fmt.Errorf("connect to the sender: %w", err)
	}
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case c := <-got:
		res.Messages, res.Bytes, res.Seconds = c.msgs, c.bytes, c.seconds
		if c.err != nil {
			return res, c.err
		}
	}
	if res.Messages != a.n {
		return res, fmt.Errorf("read %d messages, want %d", res.Messages, a.n)
	}
	return res, nil
}

// readRawCopy reads length-prefixed messages until the sender closes,
// discarding them, then closes its side. Timing starts when the first
// byte has arrived.
func readRawCopy(s network.Stream) rawCopy {
	var c rawCopy
	r := bufio.NewReaderSize(s, rawBuffer)
	if _, err := r.Peek(1); err != nil {
		s.Reset()
		return rawCopy{err: fmt.Errorf("raw stream: no data: %w", err)}
	}
	start := time.Now()
	for {
		size, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil && size > maxRawMessage {
			err = fmt.Errorf("message of %d bytes", size)
		}
		if err == nil {
			_, err = r.Discard(int(size))
		}
		if err != nil {
			s.Reset()
			c.err = fmt.Errorf("raw stream: after %d messages: %w", c.msgs, err)
			return c
		}
		c.msgs++
		c.bytes += int64(uvarintLen(size)) + int64(size)
	}
	c.seconds = time.Since(start).Seconds()
	s.Close()
	return c
}

// encodeRawCopy returns the raw stream of the n messages of the seed:
// each message's encoded bytes after their length as a uvarint. It also
// returns the sum of the messages' encoded sizes, prefixes excluded. The
// stream is encoded beforehand, so that the copy is bounded by the
// transport alone; it holds n times about 310 bytes.
func encodeRawCopy(seed uint64, n int) (stream []byte, encoded int64, err error) {
	g := newGenerator(seed, livePayloadSize, 1)
	batch := make([]reconcile.Message, ingestBatch)
	for i := 0; i < n; i += ingestBatch {
		msgs := batch[:min(ingestBatch, n-i)]
		g.fill(msgs)
		for j := range msgs {
			m := msgs[j].ToPB()
			size := m.Size()
			if stream == nil {
				// Messages differ little in size: room for n like the first.
				stream = make([]byte, 0, n*(size+binary.MaxVarintLen32))
			}
			stream = binary.AppendUvarint(stream, uint64(size))
			head := len(stream)
			stream = slices.Grow(stream, size)[:head+size]
			if _, err := m.MarshalTo(stream[head:]); err != nil {
				return nil, 0, err
			}
			encoded += int64(size)
		}
	}
	return stream, encoded, nil
}

// sendRawCopy opens a raw stream to p, writes stream (from encodeRawCopy)
// and closes its side, then waits for p to close, so that the stream is
// not torn down before p has read everything. p's own count of what it
// read is the check that the copy is complete.
func sendRawCopy(ctx context.Context, h host.Host, p peer.ID, stream []byte) error {
	s, err := h.NewStream(ctx, p, rawStreamID)
	if err != nil {
		return err
	}
	defer context.AfterFunc(ctx, func() { s.Reset() })()
	if _, err := s.Write(stream); err != nil {
		s.Reset()
		return err
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return err
	}
	if _, err := io.Copy(io.Discard, s); err != nil {
		s.Reset()
		return fmt.Errorf("waiting for the receiver to close: %w", err)
	}
	return s.Close()
}

// uvarintLen returns the length of v as a uvarint.
func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}
