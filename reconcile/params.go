package reconcile

import (
	"errors"
	"fmt"
)

// Params tunes reconciliation. The two sides of a session need not use
// the same values; every field has a safe default in DefaultParams.
type Params struct {
	// FrameSize is the largest frame a side sends, in bytes of encoded
	// protobuf. Default 1 MiB; at least 64 KiB.
	FrameSize int
	// KeyListMax: a side answers a differing range by listing its hashes
	// when it holds at most this many there. Default 32.
	KeyListMax int
	// SketchMargin is added to the sketch length that decodes an
	// expected difference at the first try 99 times in 100 (see
	// sketchLen). Default 8 cells.
	SketchMargin int
	// MaxMessages bounds the messages of one session, both directions
	// counted. The initiator sends a message that asks for a reply only
	// while the reply stays within the bound; when it would not, the
	// initiator's message is the session's last (it asks for nothing
	// and may be one beyond the bound) and the session ends incomplete
	// (see Session.Complete). Default 24.
	//
	// Every session learns part of the difference, so that sessions
	// repeated until one is complete converge, when the messages suffice
	// to cut the range down to parts one message can list: when
	// N <= k^(a-1) · L, for N keys in the range, a = (MaxMessages-2)/2
	// messages that ask after the first, k = min(MaxItems-1, 1024) parts
	// per cut and L = min(FrameSize/64, MaxIDs) keys per list. The
	// defaults cover any size (about 2^114 keys); 8 messages of 64 items
	// and 256 IDs cover a million.
	MaxMessages int
	// MaxDiff bounds what one session learns, Need and Have together,
	// in hashes, and with it the session's memory. Once the initiator
	// has learned this many, its next message is the last and the
	// session ends incomplete; it may pass the bound by what that
	// message and the reply before it carry (Limits.MaxIDs hashes each
	// way, and as many listed). Default 1<<20.
	MaxDiff int
	// Limits bound what a side accepts in one message.
	Limits Limits
}

// Limits bound one received message. A message beyond them fails with
// ErrTooLarge before any work is done for it.
type Limits struct {
	MaxItems int // range items; default 65536
	MaxCells int // sketch cells asked for or sent; default 1<<18
	MaxIDs   int // hashes or short IDs; default 1<<20
}

// DefaultParams returns the defaults documented on Params.
func DefaultParams() Params {
	return Params{
		FrameSize:    1 << 20,
		KeyListMax:   32,
		SketchMargin: 8,
		MaxMessages:  24,
		MaxDiff:      1 << 20,
		Limits:       Limits{MaxItems: 1 << 16, MaxCells: 1 << 18, MaxIDs: 1 << 20},
	}
}

// Validate reports a parameter set that cannot work.
func (p *Params) Validate() error {
	switch {
	case p.FrameSize < 64<<10:
		return fmt.Errorf("frame size %d below 64 KiB", p.FrameSize)
	case p.KeyListMax < 0 || p.SketchMargin < 1 || p.MaxMessages < 2 || p.MaxDiff < 1:
		return errors.New("reconcile params out of range")
	case p.Limits.MaxItems < 1 || p.Limits.MaxCells < 1 || p.Limits.MaxIDs < 1:
		return errors.New("reconcile limits out of range")
	}
	return nil
}

// Upper bounds, in encoded bytes, of the parts of a message: an item
// without its cells, hashes and IDs (mode, fingerprint, counts, bounds,
// field tags), and a frame's own fields (bounds, flags, field tags).
const (
	itemWireMax  = 192
	frameWireMax = 96
)

// MaxMessageBytes is the most encoded bytes, over all its frames, that
// a message within l can take when its frames are at most frames: its
// items, cells, IDs, listed and answered hashes and the hashes the
// receiver lacks, each at their limit. A receiver counting a message's
// bytes as its frames arrive refuses one past this, which no message that
// decodes within l can reach: it bounds the memory of a message by the
// limits, not by what its frames claim.
func (l Limits) MaxMessageBytes(frames int) int64 {
	return int64(l.MaxItems)*itemWireMax + int64(l.MaxCells)*cellSize +
		int64(l.MaxIDs)*(8+2*(KeyWireMax+1)) + int64(frames)*frameWireMax
}

// maxRangeCells is the longest sketch of one range: it must fit half a
// frame and the receiver's cell limit, and a range that needs more is
// split instead. A sketch decodes fewer elements than it has cells, and
// each must then be asked for by ID and sent as a hash, so it is also
// kept within the ID limit: one decoded sketch always fits one message.
func (p *Params) maxRangeCells() int {
	return min(p.FrameSize/2/cellSize, p.Limits.MaxCells, p.Limits.MaxIDs)
}

// maxListed is the most keys one item lists, one WANT asks for, and one
// item of the peer buys: the keys given for a KEYLIST or FINGERPRINT
// item, which may be a few bytes long. Half a frame of keys at their
// largest (KeyWireMax) keeps a listing within a frame beside the item's
// other fields, and makes the answer to one item at most what the asker
// is itself prepared to send in one frame: 512 KiB for the default 1 MiB
// frame, about 10,000 times the item, but never more than that per
// item, whatever the scope's size. It is also within the receiver's ID limit, so one item's answer
// always fits one message.
func (p *Params) maxListed() int { return min(p.FrameSize/2/KeyWireMax, p.Limits.MaxIDs) }

var (
	// ErrTooLarge is returned for a message beyond the receiver's limits.
	ErrTooLarge = errors.New("reconciliation message too large")
	// ErrUnexpected is returned for a message that breaks the protocol's
	// turn-taking: a mode the receiver's role never receives, or cells
	// that do not continue the sketch asked for.
	ErrUnexpected = errors.New("unexpected reconciliation message")
	// ErrTooManyMessages reports a session that took more messages than
	// its caller allows. Session never returns it: a session that runs
	// out of messages ends incomplete instead (Session.Complete). It is
	// kept for transports that count a peer's turns themselves and
	// refuse a peer that goes on beyond them.
	ErrTooManyMessages = errors.New("reconciliation session took too many messages")
)
