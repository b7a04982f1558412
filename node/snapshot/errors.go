package snapshot

import "errors"

// Errors a caller can branch on with errors.Is. A reader's error wraps
// one of the first five and names the batch index and file offset where
// it was found; a writer's refusal of one message wraps one of the next
// three and leaves the writer usable.
var (
	// ErrFormat: the bytes are not a snapshot, or one of a format
	// version or with flags this package does not know.
	ErrFormat = errors.New("snapshot: not a snapshot or unsupported version")

	// ErrTruncated: the file ends early (a partial download, or a writer
	// that never reached Close). Fetching the rest may fix it.
	ErrTruncated = errors.New("snapshot: truncated")

	// ErrCorrupt: bytes that fail a checksum or do not decode, messages
	// out of key order, or a trailer that disagrees with the batches.
	ErrCorrupt = errors.New("snapshot: corrupt")

	// ErrMismatch: content that decodes and checks out on its own but
	// disagrees with the header: message count, aggregate (so the root),
	// key range or scope.
	ErrMismatch = errors.New("snapshot: content does not match header")

	// ErrTooLarge: a batch or message beyond the configured limits.
	ErrTooLarge = errors.New("snapshot: beyond size limit")

	// ErrOrder: a key not strictly above the previous one. A reader
	// returns it wrapped together with ErrCorrupt.
	ErrOrder = errors.New("snapshot: keys out of order")

	// ErrScope: a message of another scope than the writer's.
	ErrScope = errors.New("snapshot: message of another scope")

	// ErrInvalid: a message that fails reconcile.Message.Validate; the
	// reason is wrapped too. A reader returns it wrapped together with
	// ErrCorrupt.
	ErrInvalid = errors.New("snapshot: invalid message")

	// ErrWrongFile: Resume was given a State taken from another file, or
	// one that cannot be a point in this file.
	ErrWrongFile = errors.New("snapshot: state is not of this file")

	// ErrClosed: a call on a Writer or Reader after Close.
	ErrClosed = errors.New("snapshot: closed")
)

// readError is a Reader's error: where in the file it failed, what, and
// the sentinels it matches.
type readError struct {
	is    []error // matched by errors.Is; the first one leads the message
	where string
	msg   string
}

func (e *readError) Error() string   { return e.is[0].Error() + ": " + e.where + ": " + e.msg }
func (e *readError) Unwrap() []error { return e.is }

// is lists the sentinels a readError matches.
func is(errs ...error) []error { return errs }
