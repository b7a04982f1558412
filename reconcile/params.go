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
	// counted; the initiator fails the session beyond it. Default 24.
	MaxMessages int
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
		Limits:       Limits{MaxItems: 1 << 16, MaxCells: 1 << 18, MaxIDs: 1 << 20},
	}
}

// Validate reports a parameter set that cannot work.
func (p *Params) Validate() error {
	switch {
	case p.FrameSize < 64<<10:
		return fmt.Errorf("frame size %d below 64 KiB", p.FrameSize)
	case p.KeyListMax < 0 || p.SketchMargin < 1 || p.MaxMessages < 2:
		return errors.New("reconcile params out of range")
	case p.Limits.MaxItems < 1 || p.Limits.MaxCells < 1 || p.Limits.MaxIDs < 1:
		return errors.New("reconcile limits out of range")
	}
	return nil
}

// maxRangeCells is the longest sketch of one range: it must fit half a
// frame, and a range that needs more is split instead.
func (p *Params) maxRangeCells() int {
	return min(p.FrameSize/2/cellSize, p.Limits.MaxCells)
}

// maxListed is the most hashes one item lists or one WANT asks for.
func (p *Params) maxListed() int { return p.FrameSize / 2 / HashSize }

var (
	// ErrTooLarge is returned for a message beyond the receiver's limits.
	ErrTooLarge = errors.New("reconciliation message too large")
	// ErrUnexpected is returned for a message that breaks the protocol's
	// turn-taking: a mode the receiver's role never receives, or cells
	// that do not continue the sketch asked for.
	ErrUnexpected = errors.New("unexpected reconciliation message")
	// ErrTooManyMessages is returned when a session exceeds MaxMessages.
	ErrTooManyMessages = errors.New("reconciliation session took too many messages")
)
