package reconcile

import (
	"time"

	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/storesync/storesync/pb"
)

// Message is a stored message: the fields the Waku deterministic message
// hash covers.
type Message struct {
	PubsubTopic  string
	ContentTopic string
	Payload      []byte
	Meta         []byte
	// Timestamp is the sender's time in Unix nanoseconds.
	Timestamp int64
}

// MessageHash computes the Waku deterministic message hash of
// RFC 14/WAKU2-MESSAGE: SHA-256 over the pubsub topic, the payload, the
// content topic, the meta and the timestamp as 8 bytes big-endian. An
// absent meta is empty and adds nothing; the timestamp is always appended,
// as nwaku does.
func MessageHash(pubsubTopic, contentTopic string, payload, meta []byte, timestamp int64) Hash {
	d := sha256.New()
	d.Write([]byte(pubsubTopic))
	d.Write(payload)
	d.Write([]byte(contentTopic))
	d.Write(meta)
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(timestamp))
	d.Write(ts[:])
	var h Hash
	d.Sum(h[:0])
	return h
}

// Hash returns the message's Waku deterministic hash.
func (m *Message) Hash() Hash {
	return MessageHash(m.PubsubTopic, m.ContentTopic, m.Payload, m.Meta, m.Timestamp)
}

// Key returns the message's tree key.
func (m *Message) Key() Key { return Key{TS: uint64(m.Timestamp), Hash: m.Hash()} }

// Scope returns the message's scope.
func (m *Message) Scope() Scope {
	return Scope{PubsubTopic: m.PubsubTopic, ContentTopic: m.ContentTopic}
}

// ErrBadTimestamp is returned for a message whose timestamp is not in
// [1, MaxTimestamp]: such a message has no place in a time-ordered store.
var ErrBadTimestamp = errors.New("message timestamp must be positive")

// Validate checks what a store needs of a message.
func (m *Message) Validate() error {
	if m.Timestamp <= 0 {
		return fmt.Errorf("%w: %d", ErrBadTimestamp, m.Timestamp)
	}
	if m.ContentTopic == "" {
		return errors.New("message has no content topic")
	}
	if m.PubsubTopic == "" {
		return errors.New("message has no pubsub topic")
	}
	return nil
}

// DefaultMaxMessageSize is the default bound on a message's Size: 150
// KiB, the limit Waku relays apply.
const DefaultMaxMessageSize = 150 << 10

// ErrMessageTooLarge is returned for a message whose Size passes a
// store's or a peer's maximum.
var ErrMessageTooLarge = errors.New("message too large")

// Size returns the size of the message's wire form (pb.Message): the
// bytes it takes in a transfer or a snapshot, less framing.
func (m *Message) Size() int {
	p := pb.Message{PubsubTopic: m.PubsubTopic, ContentTopic: m.ContentTopic, Payload: m.Payload,
		Meta: m.Meta, Timestamp: m.Timestamp}
	return p.Size()
}

// CheckSize returns an error wrapping ErrMessageTooLarge if the message's
// Size passes max.
func (m *Message) CheckSize(max int) error {
	if n := m.Size(); n > max {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrMessageTooLarge, n, max)
	}
	return nil
}

// DefaultMaxClockSkew is the default bound on how far ahead of the local
// clock a message's timestamp may be: 20 seconds, as Waku relays allow.
const DefaultMaxClockSkew = 20 * time.Second

// ErrTimestampAhead is returned for a message timestamped further ahead of
// the local clock than a store or a peer allows. Without the bound, an
// author could always find an empty time range ahead to fill, and such
// messages would outlive every retention window.
var ErrTimestampAhead = errors.New("message timestamp too far ahead of the local clock")

// CheckClock returns an error wrapping ErrTimestampAhead if the message's
// timestamp is more than skew after now.
func (m *Message) CheckClock(now time.Time, skew time.Duration) error {
	limit := now.UnixNano() + int64(skew)
	if m.Timestamp > limit {
		return fmt.Errorf("%w: %v ahead, at most %v", ErrTimestampAhead,
			time.Duration(m.Timestamp-now.UnixNano()).Round(time.Millisecond), skew)
	}
	return nil
}

// ToPB returns the wire form of the message.
func (m *Message) ToPB() *pb.Message {
	return &pb.Message{
		PubsubTopic:  m.PubsubTopic,
		ContentTopic: m.ContentTopic,
		Payload:      m.Payload,
		Meta:         m.Meta,
		Timestamp:    m.Timestamp,
	}
}

// UnmarshalMessage decodes a wire message into m. It checks the encoding
// only; Validate checks the content.
func UnmarshalMessage(b []byte, m *Message) error {
	var p pb.Message
	if err := p.Unmarshal(b); err != nil {
		return fmt.Errorf("decode message: %w", err)
	}
	*m = MessageFromPB(&p)
	return nil
}

// MessageFromPB returns the message held by a wire message.
func MessageFromPB(p *pb.Message) Message {
	return Message{
		PubsubTopic:  p.PubsubTopic,
		ContentTopic: p.ContentTopic,
		Payload:      p.Payload,
		Meta:         p.Meta,
		Timestamp:    p.Timestamp,
	}
}

// Scope is one (pubsub topic, content topic) pair. Every scope has its own
// tree and its own root.
type Scope struct {
	PubsubTopic  string
	ContentTopic string
}

// String returns "pubsub|content".
func (s Scope) String() string { return s.PubsubTopic + "|" + s.ContentTopic }

// ID returns a short stable identifier of the scope: the first 8 bytes of
// SHA-256 over both topics, length-prefixed so that no two scopes share
// an input.
func (s Scope) ID() [8]byte {
	d := sha256.New()
	var n [binary.MaxVarintLen64]byte
	d.Write(n[:binary.PutUvarint(n[:], uint64(len(s.PubsubTopic)))])
	d.Write([]byte(s.PubsubTopic))
	d.Write([]byte(s.ContentTopic))
	var id [8]byte
	copy(id[:], d.Sum(nil))
	return id
}
