package reconcile

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/pb"
)

// groundTwinKeys are two keys of one time window whose short IDs fall in
// the same cells, the first 300 at least.
var groundTwinKeys = [2]Key{KeyOfID(0x4110fbd8e413, 12345, 0xa5), KeyOfID(0x4110fbfffeca, 54321, 0x5a)}

// randomKeys returns n random keys with timestamps below 2^50.
func randomKeys(r *rand.Rand, n int) []Key {
	out := make([]Key, n)
	for i := range out {
		out[i].TS = r.Uint64N(1 << 50)
		for j := range out[i].Hash {
			out[i].Hash[j] = byte(r.Uint32())
		}
	}
	return out
}

// respondTo has a responder over set answer one message of items and
// returns the reply's items.
func respondTo(t *testing.T, set Set, items ...rangeItem) []rangeItem {
	t.Helper()
	p := DefaultParams()
	r, err := NewResponder(set, p)
	require.NoError(t, err)
	out, _, reply, err := r.Respond(t.Context(), encode(&message{items: items}, p.FrameSize))
	require.NoError(t, err)
	require.True(t, reply)
	m, err := decode(out, &p.Limits)
	require.NoError(t, err)
	return m.items
}

// matchAnswer returns the MATCH item of a reply.
func matchAnswer(t *testing.T, items []rangeItem) rangeItem {
	t.Helper()
	i := slices.IndexFunc(items, func(it rangeItem) bool { return it.mode == pb.Mode_MATCH })
	require.GreaterOrEqual(t, i, 0, "no MATCH in the reply")
	return items[i]
}

// TestMatchAnswersFittingKeys: the responder names exactly its keys of
// the range whose cells below cell_count all lie in the pattern (checked
// against every key, one by one), and its keys of the IDs listed; a
// pattern that more keys fit than asked for, and a range larger than a
// reply may read, get no answer (count 0).
func TestMatchAnswersFittingKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	keys := append(randomKeys(r, 3000), groundTwinKeys[0], groundTwinKeys[1])
	set := NewSliceSet(keys)
	const n = 40
	pattern := CellIndices(groundTwinKeys[0], n)
	var want []Key
	for _, k := range set {
		if fits(keyID(&k), pattern, n) {
			want = append(want, k)
		}
	}
	require.Contains(t, want, groundTwinKeys[0])
	require.Contains(t, want, groundTwinKeys[1])
	require.Less(t, len(want), maxMatchKeys)
	listed := set[100]
	ask := rangeItem{lo: Key{}, hi: End, mode: pb.Mode_MATCH, cellCount: n, pattern: pattern,
		count: maxMatchKeys, ids: []ShortID{keyID(&listed)}}
	ans := matchAnswer(t, respondTo(t, set, ask))
	want = append(want, listed)
	slices.SortFunc(want, Key.Compare)
	require.Equal(t, uint64(len(want))+1, ans.count)
	require.Equal(t, want, ans.keys)

	// Every key fits cell 0 alone.
	ask = rangeItem{lo: Key{}, hi: End, mode: pb.Mode_MATCH, cellCount: 1, pattern: []uint64{0}, count: 5}
	ans = matchAnswer(t, respondTo(t, set, ask))
	require.Zero(t, ans.count)
	require.Empty(t, ans.keys)

	big := NewSliceSet(randomKeys(r, maxReplyScan+1))
	ask = rangeItem{lo: Key{}, hi: End, mode: pb.Mode_MATCH, cellCount: n, pattern: pattern, count: maxMatchKeys}
	ans = matchAnswer(t, respondTo(t, big, ask))
	require.Zero(t, ans.count)
	require.Empty(t, ans.keys)
}

// TestMatchWireRejects: a MATCH item is checked as it is decoded: the
// pattern is increasing and within cell_count, of at most
// maxPatternCells cells, asking for 1 to maxMatchKeys keys and listing
// none; an answer has no pattern, cell_count or IDs; no other mode
// carries a pattern.
func TestMatchWireRejects(t *testing.T) {
	pat := func(v ...uint64) []byte {
		var b []byte
		for _, x := range v {
			b = binary.AppendUvarint(b, x)
		}
		return b
	}
	ok := &pb.RangeItem{Mode: pb.Mode_MATCH, CellCount: 10, Pattern: pat(0, 1, 3), Count: 4, Ids: make([]byte, 8)}
	it, err := itemFromWire(ok, Key{}, End, 1<<20, 1<<20)
	require.NoError(t, err)
	require.Equal(t, []uint64{0, 1, 4}, it.pattern)
	answer := &pb.RangeItem{Mode: pb.Mode_MATCH, Count: 2, Keys: AppendKeys(nil, []Key{{TS: 5}})}
	_, err = itemFromWire(answer, Key{}, End, 1<<20, 1<<20)
	require.NoError(t, err)

	long := make([]uint64, maxPatternCells+1)
	for i := range long {
		long[i] = min(uint64(i), 1)
	}
	for name, w := range map[string]*pb.RangeItem{
		"index past cell_count": {Mode: pb.Mode_MATCH, CellCount: 4, Pattern: pat(0, 1, 3), Count: 4},
		"first past cell_count": {Mode: pb.Mode_MATCH, CellCount: 4, Pattern: pat(4), Count: 4},
		"not increasing":        {Mode: pb.Mode_MATCH, CellCount: 10, Pattern: pat(0, 2, 0), Count: 4},
		"too long":              {Mode: pb.Mode_MATCH, CellCount: 100, Pattern: pat(long...), Count: 4},
		"bad uvarint":           {Mode: pb.Mode_MATCH, CellCount: 10, Pattern: []byte{0x80}, Count: 4},
		"no cell_count":         {Mode: pb.Mode_MATCH, Pattern: pat(0), Count: 4},
		"no keys asked":         {Mode: pb.Mode_MATCH, CellCount: 10, Pattern: pat(0)},
		"too many keys asked":   {Mode: pb.Mode_MATCH, CellCount: 10, Pattern: pat(0), Count: maxMatchKeys + 1},
		"keys in a request":     {Mode: pb.Mode_MATCH, CellCount: 10, Pattern: pat(0), Count: 4, Keys: AppendKeys(nil, []Key{{TS: 5}})},
		"too many IDs":          {Mode: pb.Mode_MATCH, CellCount: 10, Pattern: pat(0), Count: 4, Ids: make([]byte, 8*(maxMatchKeys+1))},
		"answer with cells":     {Mode: pb.Mode_MATCH, CellCount: 10, Count: 1},
		"answer with IDs":       {Mode: pb.Mode_MATCH, Count: 1, Ids: make([]byte, 8)},
		"pattern in a WANT":     {Mode: pb.Mode_WANT, Pattern: pat(0), Ids: make([]byte, 8)},
		"pattern in a SKIP":     {Mode: pb.Mode_SKIP, Pattern: pat(0)},
	} {
		_, err := itemFromWire(w, Key{}, End, 1<<20, 1<<20)
		require.ErrorIs(t, err, ErrBadFrame, name)
	}
}

// matchSession returns the sets of a session that MATCH settles: the
// responder holds ground twins and a few more keys than the initiator,
// in a scope small enough to read.
func matchSession(r *rand.Rand) (local, remote SliceSet, lack []Key) {
	keys := randomKeys(r, 3000)
	lack = append(randomKeys(r, 5), groundTwinKeys[0], groundTwinKeys[1])
	return NewSliceSet(keys), NewSliceSet(append(slices.Clone(keys), lack...)), NewSliceSet(lack)
}

// TestMatchSettlesStuckScope: a scope whose sketch the twins stop is
// settled by a MATCH, exactly, and no MATCH goes to a peer without them.
func TestMatchSettlesStuckScope(t *testing.T) {
	local, remote, lack := matchSession(rand.New(rand.NewPCG(9, 10)))
	p := DefaultParams()
	s, err := NewSession(local, Key{}, End, p)
	require.NoError(t, err)
	matches := 0
	ini, res, st, err := drive(t.Context(), s, remote, p, func(frames []*pb.ReconcileFrame) error {
		for _, f := range frames {
			for _, it := range f.Items {
				if it.Mode == pb.Mode_MATCH {
					matches++
				}
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.True(t, st.Complete)
	require.Equal(t, 1, matches)
	require.Equal(t, []Key(lack), ini.Need)
	require.Equal(t, []Key(lack), res.Have)
	require.Empty(t, ini.Have)

	s, err = NewSession(local, Key{}, End, p)
	require.NoError(t, err)
	s.WithoutMatch()
	ini, _, st, err = drive(t.Context(), s, remote, p, func(frames []*pb.ReconcileFrame) error {
		for _, f := range frames {
			for _, it := range f.Items {
				require.NotEqual(t, pb.Mode_MATCH, it.Mode)
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.True(t, st.Complete)
	require.Equal(t, []Key(lack), ini.Need)
}

// TestMatchLiesCostNothing: a responder whose MATCH answers name other
// keys than its own (forged keys of the range, or none) does not break
// the session: the range's fingerprint refuses the result, the range is
// resolved without MATCH, and the session ends complete with every key
// the initiator lacks among what it learned.
func TestMatchLiesCostNothing(t *testing.T) {
	for seed := range uint64(4) {
		r := rand.New(rand.NewPCG(11, seed))
		local, remote, lack := matchSession(r)
		p := DefaultParams()
		s, err := NewSession(local, Key{}, End, p)
		require.NoError(t, err)
		resp, err := NewResponder(remote, p)
		require.NoError(t, err)
		msg, err := s.Start(t.Context())
		require.NoError(t, err)
		lied := false
		for range p.MaxMessages {
			reply, _, more, err := resp.Respond(t.Context(), msg)
			require.NoError(t, err)
			if !more {
				break
			}
			m, err := decode(reply, &p.Limits)
			require.NoError(t, err)
			for i := range m.items {
				it := &m.items[i]
				if it.mode != pb.Mode_MATCH {
					continue
				}
				lied = true
				switch seed % 2 {
				case 0: // forged keys of the range, as many
					forged := randomKeys(r, len(it.keys))
					for j := range forged {
						forged[j].TS = it.lo.TS + 1 + forged[j].TS%(min(it.hi.TS, it.lo.TS+1<<50)-it.lo.TS-1)
					}
					it.keys = NewSliceSet(forged)
				default: // none fit
					it.count, it.keys = 1, nil
				}
			}
			next, done, err := s.Next(t.Context(), encode(m, p.FrameSize))
			require.NoError(t, err)
			if done && next == nil {
				break
			}
			msg = next
		}
		require.True(t, lied, "no MATCH to lie in")
		require.True(t, s.Complete())
		got := s.Result()
		for _, k := range lack {
			require.Contains(t, got.Need, k)
		}
		require.Empty(t, got.Have)
	}
}

// TestResponderWithoutMatchRefusesIt: a responder for a peer of sync 3.0
// takes a MATCH as the protocol error it is for such a peer.
func TestResponderWithoutMatchRefusesIt(t *testing.T) {
	p := DefaultParams()
	r, err := NewResponder(NewSliceSet(randomKeys(rand.New(rand.NewPCG(1, 2)), 10)), p)
	require.NoError(t, err)
	r.WithoutMatch()
	ask := rangeItem{lo: Key{}, hi: End, mode: pb.Mode_MATCH, cellCount: 8, pattern: []uint64{0, 3}, count: 4}
	_, _, _, err = r.Respond(t.Context(), encode(&message{items: []rangeItem{ask}}, p.FrameSize))
	require.ErrorIs(t, err, ErrUnexpected)
}
