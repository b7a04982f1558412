package node

import "errors"

var (
	// ErrUnknownScope is returned, or reported per message, for a scope
	// the store does not keep.
	ErrUnknownScope = errors.New("scope not kept")

	// ErrCorrupt means the datastore disagrees with itself: a scope
	// record that does not decode, a tree whose root differs from its
	// scope's recorded count and sum, a stored message that does not hash
	// to its key. The store never repairs such damage on its own; the
	// error names what disagrees.
	ErrCorrupt = errors.New("store corrupt")

	// ErrInvalidMessage is reported per message by Put for a message that
	// fails reconcile.Message.Validate; the reason is wrapped with it.
	ErrInvalidMessage = errors.New("invalid message")

	// ErrBadQuery is returned by Query for bounds no message can meet,
	// such as a negative time.
	ErrBadQuery = errors.New("bad query")

	// ErrClosed is returned by calls made after Close.
	ErrClosed = errors.New("store closed")
)
