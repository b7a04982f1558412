package reconcile

import (
	"context"
	"encoding/binary"

	"github.com/storesync/storesync/pb"
)

// Stats describes a session on the wire, as the in-process driver saw it.
type Stats struct {
	// Messages sent in both directions; frames sent back to back in one
	// direction are one message.
	Messages int
	// RoundTrips is Messages/2 rounded up: a request and its reply.
	RoundTrips int
	// Bytes put on the wire by each side: every frame with its varint
	// length prefix, as the stream protocol frames them.
	InitiatorBytes, ResponderBytes int64
	// Complete reports whether the session resolved its whole range
	// (Session.Complete). When it did not, what was learned is still
	// true: apply it and reconcile again.
	Complete bool
}

// FrameBytes returns a frame's size on the wire with its length prefix.
func FrameBytes(f *pb.ReconcileFrame) int64 {
	n := f.Size()
	var b [binary.MaxVarintLen64]byte
	return int64(n + binary.PutUvarint(b[:], uint64(n)))
}

func framesBytes(fs []*pb.ReconcileFrame) int64 {
	var n int64
	for _, f := range fs {
		n += FrameBytes(f)
	}
	return n
}

// Reconcile runs a whole session in-process between an initiator over
// local and a responder over remote, for the keys in [lo, hi). It returns
// what each side learned and the session's wire statistics. A session
// that reaches Params.MaxMessages or Params.MaxDiff ends without error
// and with st.Complete false.
func Reconcile(ctx context.Context, local, remote Set, lo, hi Key, p Params) (initiator, responder Diff, st Stats, err error) {
	s, err := NewSession(local, lo, hi, p)
	if err != nil {
		return
	}
	return drive(ctx, s, remote, p, nil)
}

// drive runs session s against a responder over remote; sent, if not
// nil, sees every message of the initiator first.
func drive(ctx context.Context, s *Session, remote Set, p Params, sent func([]*pb.ReconcileFrame) error) (initiator, responder Diff, st Stats, err error) {
	r, err := NewResponder(remote, p)
	if err != nil {
		return
	}
	learned := newSide(remote, &p, false)
	msg, err := s.Start(ctx)
	if err != nil {
		return
	}
	for {
		if sent != nil {
			if err = sent(msg); err != nil {
				return
			}
		}
		st.Messages++
		st.InitiatorBytes += framesBytes(msg)
		reply, l, more, err2 := r.Respond(ctx, msg)
		if err2 != nil {
			err = err2
			return
		}
		learned.learnNeed(l.Need)
		for _, h := range l.Have {
			learned.have[h] = struct{}{}
		}
		if !more {
			break
		}
		st.Messages++
		st.ResponderBytes += framesBytes(reply)
		next, done, err2 := s.Next(ctx, reply)
		if err2 != nil {
			err = err2
			return
		}
		if done && next == nil {
			break
		}
		msg = next
	}
	st.RoundTrips = (st.Messages + 1) / 2
	st.Complete = s.Complete()
	return s.Result(), learned.diff(), st, nil
}
