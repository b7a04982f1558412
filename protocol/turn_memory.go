package protocol

import (
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
)

// frameOverhead is what a received frame costs in memory beyond its
// encoded bytes: the decoded structs and slice headers that hold it.
const frameOverhead = 256

// turnMemory reserves, from a stream's resource scope, the memory of the
// frames of the peer's turn as they arrive, before they are kept, and
// gives it back once the turn has been handled. The stream's own
// reservation covers one frame being read; what a turn holds beyond that
// is counted here, so that libp2p's resource manager bounds a turn's
// memory per stream, per peer, per service and for the whole host: a
// reservation the manager refuses ends the session with ErrTooLarge,
// before the frame is kept.
type turnMemory struct {
	scope network.ResourceScope
	held  int
}

func newTurnMemory(st network.Stream) *turnMemory { return &turnMemory{scope: st.Scope()} }

// hold reserves the memory of a frame of n encoded bytes.
func (t *turnMemory) hold(n int) error {
	n += frameOverhead
	if err := t.scope.ReserveMemory(n, network.ReservationPriorityHigh); err != nil {
		return errors.Join(ErrTooLarge, fmt.Errorf("a turn past the memory this stream may hold (%d bytes held): %w", t.held, err))
	}
	t.held += n
	return nil
}

// release gives back what the turn held.
func (t *turnMemory) release() {
	if t.held > 0 {
		t.scope.ReleaseMemory(t.held)
		t.held = 0
	}
}
