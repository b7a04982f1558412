package protocol

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-msgio/protoio"
)

// conn frames a stream as varint-delimited protobuf messages, with a size
// cap on every read and a deadline on every read and write, none past the
// session's end. Writes are buffered until flush, so that a turn of many
// frames goes out together. It counts the bytes both ways.
type conn struct {
	s        network.Stream
	r        protoio.Reader
	bw       *bufio.Writer
	w        protoio.Writer
	io       time.Duration
	deadline time.Time
	counter  *countingReader
	written  int64
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type countingWriter struct {
	w io.Writer
	n *int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	*c.n += int64(n)
	return n, err
}

// newConn wraps a stream; maxSize caps every message read.
func newConn(s network.Stream, maxSize int, ioTimeout time.Duration, deadline time.Time) *conn {
	c := &conn{s: s, io: ioTimeout, deadline: deadline, counter: &countingReader{r: s}}
	c.r = protoio.NewDelimitedReader(c.counter, maxSize)
	c.bw = bufio.NewWriterSize(countingWriter{w: s, n: &c.written}, 32<<10)
	c.w = protoio.NewDelimitedWriter(c.bw)
	return c
}

// until returns the deadline of the next read or write.
func (c *conn) until() time.Time {
	d := time.Now().Add(c.io)
	if !c.deadline.IsZero() && c.deadline.Before(d) {
		return c.deadline
	}
	return d
}

// read reads one message. A message over the size cap is ErrTooLarge, one
// that does not decode ErrBadRequest; io.EOF means the peer closed its
// side cleanly.
func (c *conn) read(m proto.Message) error {
	if err := c.s.SetReadDeadline(c.until()); err != nil {
		return err
	}
	err := c.r.ReadMsg(m)
	switch {
	case err == nil, errors.Is(err, io.EOF):
		return err
	case errors.Is(err, io.ErrShortBuffer):
		return ErrTooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ErrTimeout
	case errors.Is(err, network.ErrReset), errors.Is(err, io.ErrUnexpectedEOF):
		return err
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return ErrTimeout
	}
	return errors.Join(ErrBadRequest, err)
}

// write buffers one message.
func (c *conn) write(m proto.Message) error {
	if err := c.s.SetWriteDeadline(c.until()); err != nil {
		return err
	}
	return c.w.WriteMsg(m)
}

// writeParts writes one frame made of parts, in order, without copying
// them into one message first: a part larger than the buffer goes
// straight to the stream.
func (c *conn) writeParts(parts ...[]byte) error {
	if err := c.s.SetWriteDeadline(c.until()); err != nil {
		return err
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if _, err := c.bw.Write(binary.AppendUvarint(nil, uint64(n))); err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := c.bw.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// flush sends what is buffered.
func (c *conn) flush() error {
	if err := c.s.SetWriteDeadline(c.until()); err != nil {
		return err
	}
	return c.bw.Flush()
}

// bytes returns the bytes read and written so far.
func (c *conn) bytes() (in, out int64) { return c.counter.n, c.written }

// resetOnCancel resets the stream when ctx ends before stop is called,
// so that cancelling a call aborts its I/O at once.
func resetOnCancel(ctx context.Context, s network.Stream) (stop func() bool) {
	return context.AfterFunc(ctx, func() { _ = s.Reset() })
}
