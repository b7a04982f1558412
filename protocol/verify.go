package protocol

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/reconcile"
)

// Reasons a received message is rejected, as metrics label them.
const (
	rejectHash     = "hash"      // not a message that was asked for
	rejectScope    = "scope"     // of another scope than the one asked for
	rejectInvalid  = "invalid"   // fails reconcile.Message.Validate
	rejectTooLarge = "too_large" // over the maximum message size
	rejectAhead    = "ahead"     // timestamped too far ahead of the clock
	rejectVetoed   = "vetoed"    // refused by the application's Validator
)

// check verifies what every received message must pass, whatever brought
// it: it is of the scope asked for, valid, within the maximum message
// size, not timestamped too far ahead of the clock, and accepted by the application's validator. It returns the
// reason of a rejection, or "" for a good message.
func (s *Service) check(ctx context.Context, p peer.ID, sc reconcile.Scope, m *reconcile.Message) string {
	switch {
	case m.Scope() != sc:
		return rejectScope
	case m.Validate() != nil:
		return rejectInvalid
	case m.CheckSize(s.cfg.maxMessageSize) != nil:
		return rejectTooLarge
	case m.CheckClock(s.cfg.now(), s.cfg.maxClockSkew) != nil:
		return rejectAhead
	}
	if v := s.cfg.validator; v != nil && v(ctx, p, m) != nil {
		return rejectVetoed
	}
	return ""
}

// penalize counts a batch's rejected messages, by reason, against the
// peer that sent them, and returns ErrRefused once the peer has sent too
// many bad ones: the transfer then stops.
func (s *Service) penalize(p peer.ID, sc reconcile.Scope, rejected map[string]int) (int, error) {
	bad := 0
	for reason, n := range rejected {
		bad += n
		if m := s.cfg.metrics; m != nil {
			m.MessagesRejected(sc.String(), reason, n)
		}
	}
	if bad == 0 {
		return 0, nil
	}
	s.log.Warn("peer sent bad messages", "peer", p, "scope", sc, "count", bad)
	if s.strikes.add(p, bad) {
		return bad, fmt.Errorf("%w: peer %s sent too many bad messages", ErrRefused, p)
	}
	return bad, nil
}
