package protocol

import (
	"errors"
	"fmt"

	"github.com/storesync/storesync/pb"
)

// Errors a caller can branch on with errors.Is. Errors the remote side
// reports arrive as a *RemoteError, which matches the sentinel of its
// code.
var (
	// ErrUnsupportedScope: the peer does not keep the scope.
	ErrUnsupportedScope = errors.New("storesync: peer does not keep the scope")
	// ErrUnknownScope: the local store does not keep the scope.
	ErrUnknownScope = errors.New("storesync: scope not kept locally")
	// ErrTooLarge: a frame or request exceeded a size limit.
	ErrTooLarge = errors.New("storesync: frame too large")
	// ErrTooManySessions: the peer has too many sessions open with the
	// server.
	ErrTooManySessions = errors.New("storesync: too many sessions from this peer")
	// ErrBusy: the server is at its limit of sessions.
	ErrBusy = errors.New("storesync: server busy")
	// ErrBadRequest: a frame did not decode or broke the protocol.
	ErrBadRequest = errors.New("storesync: bad request")
	// ErrTimeout: the session ran out of time.
	ErrTimeout = errors.New("storesync: session timed out")
	// ErrInternal: the remote side failed on its own.
	ErrInternal = errors.New("storesync: remote internal error")
	// ErrRefused: the peer refuses to sync with us, or we with it.
	ErrRefused = errors.New("storesync: refused")
	// ErrProtocolNotSupported: the peer does not speak storesync; the
	// stream failed at protocol negotiation.
	ErrProtocolNotSupported = errors.New("storesync: peer does not support the protocol")
)

var codeErrors = map[pb.Code]error{
	pb.Code_UNSUPPORTED_SCOPE: ErrUnsupportedScope,
	pb.Code_TOO_LARGE:         ErrTooLarge,
	pb.Code_TOO_MANY_SESSIONS: ErrTooManySessions,
	pb.Code_BUSY:              ErrBusy,
	pb.Code_BAD_REQUEST:       ErrBadRequest,
	pb.Code_TIMEOUT:           ErrTimeout,
	pb.Code_INTERNAL:          ErrInternal,
	pb.Code_REFUSED:           ErrRefused,
}

// RemoteError is an error the peer sent as a code on the wire.
type RemoteError struct {
	Code   pb.Code
	Detail string
}

// Error returns the sentinel's text and the peer's detail.
func (e *RemoteError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("peer: %v", e.Unwrap())
	}
	return fmt.Sprintf("peer: %v: %s", e.Unwrap(), e.Detail)
}

// Unwrap returns the sentinel of the error's code.
func (e *RemoteError) Unwrap() error {
	if err, ok := codeErrors[e.Code]; ok {
		return err
	}
	return ErrInternal
}

// remoteError turns a wire error into a Go error.
func remoteError(e *pb.Error) error {
	if e == nil || e.Code == pb.Code_OK {
		return nil
	}
	return &RemoteError{Code: e.Code, Detail: e.Detail}
}

// wireError turns a Go error into what we tell the peer: its code, and a
// detail that gives nothing of our internals away.
func wireError(err error) *pb.Error {
	for code, sentinel := range codeErrors {
		if errors.Is(err, sentinel) {
			return &pb.Error{Code: code, Detail: err.Error()}
		}
	}
	return &pb.Error{Code: pb.Code_INTERNAL}
}
