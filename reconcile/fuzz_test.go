package reconcile_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/reconcile"
)

// fuzzSets returns a set and variants of it whose sessions produce seed
// frames of every mode.
func fuzzSets() (reconcile.SliceSet, []reconcile.SliceSet) {
	r := rand.New(rand.NewPCG(21, 22))
	base := pool(r, 400, 1<<30)
	// The responder also holds two keys that share their first 300 cells
	// (groundTwins), which an initiator lacking them asks a MATCH for.
	twins := []reconcile.Key{reconcile.KeyOfID(0x4110fbd8e413, 12345, 0xa5), reconcile.KeyOfID(0x4110fbfffeca, 54321, 0x5a)}
	return reconcile.NewSliceSet(append(slices.Clone(base), twins...)), []reconcile.SliceSet{
		reconcile.NewSliceSet(append(slices.Clone(base), pool(r, 3, 1<<30)...)),     // stuck: MATCH
		reconcile.NewSliceSet(base[:350]),                                           // behind: prefix probe
		reconcile.NewSliceSet(dropIdx(base, func(i int) bool { return i%37 == 0 })), // scattered: sketch
		reconcile.NewSliceSet(base[:20]),                                            // few: key list
		reconcile.NewSliceSet(pool(r, 300, 1<<30)),                                  // disjoint: splits
		// Both sides changed, counts equal: a sketch with spare counts.
		reconcile.NewSliceSet(model(append(dropIdx(base, func(i int) bool { return i%10 == 0 }), pool(r, 40, 1<<30)...)).sorted()),
	}
}

func fuzzParams() reconcile.Params {
	p := reconcile.DefaultParams()
	p.FrameSize = 64 << 10
	p.Limits = reconcile.Limits{MaxItems: 1024, MaxCells: 4096, MaxIDs: 4096}
	return p
}

// traffic records the messages of real sessions between the variants
// (initiators) and the base set (responder).
func traffic(t testing.TB) (toResponder, toInitiator [][]byte) {
	base, variants := fuzzSets()
	ctx := context.Background()
	for _, v := range variants {
		s, err := reconcile.NewSession(v, reconcile.Key{}, reconcile.End, fuzzParams())
		require.NoError(t, err)
		r, err := reconcile.NewResponder(base, fuzzParams())
		require.NoError(t, err)
		msg, err := s.Start(ctx)
		require.NoError(t, err)
		for range 20 {
			toResponder = append(toResponder, reconcile.DelimitedFrames(msg))
			reply, _, more, err := r.Respond(ctx, msg)
			require.NoError(t, err)
			if !more {
				break
			}
			toInitiator = append(toInitiator, reconcile.DelimitedFrames(reply))
			next, done, err := s.Next(ctx, reply)
			require.NoError(t, err)
			if done {
				if next != nil {
					toResponder = append(toResponder, reconcile.DelimitedFrames(next))
				}
				break
			}
			msg = next
		}
	}
	return toResponder, toInitiator
}

// checkReply requires a reply to be what an honest peer accepts.
func checkReply(t *testing.T, out []*pb.ReconcileFrame, p reconcile.Params) {
	for _, f := range out {
		require.LessOrEqual(t, f.Size(), p.FrameSize)
		b, err := f.Marshal()
		require.NoError(t, err)
		require.NoError(t, new(pb.ReconcileFrame).Unmarshal(b))
	}
}

// FuzzRespond feeds the responder arbitrary frames: it must answer or
// fail with an error, never panic, and never send an oversized frame.
func FuzzRespond(f *testing.F) {
	in, _ := traffic(f)
	for _, b := range in {
		f.Add(b)
	}
	base, _ := fuzzSets()
	p := fuzzParams()
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := reconcile.NewResponder(base, p)
		require.NoError(t, err)
		out, _, _, err := r.Respond(context.Background(), reconcile.ParseFrames(data))
		if err == nil {
			checkReply(t, out, p)
		}
	})
}

// FuzzSessionNext feeds an initiator an arbitrary reply after each of its
// real first messages.
func FuzzSessionNext(f *testing.F) {
	_, out := traffic(f)
	for _, b := range out {
		f.Add(uint8(0), b)
		f.Add(uint8(1), b)
	}
	_, variants := fuzzSets()
	p := fuzzParams()
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		s, err := reconcile.NewSession(variants[int(which)%len(variants)], reconcile.Key{}, reconcile.End, p)
		require.NoError(t, err)
		_, err = s.Start(context.Background())
		require.NoError(t, err)
		next, _, err := s.Next(context.Background(), reconcile.ParseFrames(data))
		if err == nil {
			checkReply(t, next, p)
		}
	})
}

// FuzzUnmarshalMessage decodes arbitrary bytes as a stored message.
func FuzzUnmarshalMessage(f *testing.F) {
	m := reconcile.Message{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/a/1/b/proto", Payload: []byte("x"), Timestamp: 5}
	b, _ := m.ToPB().Marshal()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var m reconcile.Message
		if reconcile.UnmarshalMessage(data, &m) != nil {
			return
		}
		if m.Validate() != nil {
			return
		}
		again, err := m.ToPB().Marshal()
		require.NoError(t, err)
		var back reconcile.Message
		require.NoError(t, reconcile.UnmarshalMessage(again, &back))
		require.Equal(t, m.Hash(), back.Hash())
	})
}
