package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/pb"
)

// These tests check that no scope size makes reconciliation impossible:
// with limits far below the size of the difference, every message of
// both sides stays within the receiver's limits, sessions that run out
// of messages end incomplete instead of failing, and repeated sessions
// converge on the union.

// ceilingParams are limits far below the difference the tests reconcile:
// 256 hashes per message against differences of 20,000 keys.
func ceilingParams() Params {
	p := DefaultParams()
	p.FrameSize = 64 << 10
	p.KeyListMax = 8
	p.MaxMessages = 8
	p.Limits = Limits{MaxItems: 64, MaxCells: 512, MaxIDs: 256}
	return p
}

// growSet is a Set the test can add keys to between sessions.
type growSet interface {
	Set
	add(t *testing.T, keys []Key)
	all(t *testing.T) []Key
}

type sliceGrowSet struct{ SliceSet }

func (s *sliceGrowSet) add(_ *testing.T, keys []Key) {
	add := NewSliceSet(keys)
	merged := make(SliceSet, 0, len(s.SliceSet)+len(add))
	i, j := 0, 0
	for i < len(s.SliceSet) || j < len(add) {
		switch {
		case j == len(add) || i < len(s.SliceSet) && s.SliceSet[i].Less(add[j]):
			merged = append(merged, s.SliceSet[i])
			i++
		case i == len(s.SliceSet) || add[j].Less(s.SliceSet[i]):
			merged = append(merged, add[j])
			j++
		default:
			merged = append(merged, add[j])
			i, j = i+1, j+1
		}
	}
	s.SliceSet = merged
}

func (s *sliceGrowSet) all(*testing.T) []Key { return s.SliceSet }

type treeGrowSet struct{ *Tree }

func (s treeGrowSet) add(t *testing.T, keys []Key) {
	_, _, err := s.Apply(t.Context(), keys, nil)
	require.NoError(t, err)
}

func (s treeGrowSet) all(t *testing.T) []Key {
	out, err := keysIn(t.Context(), s.Tree, Key{}, End)
	require.NoError(t, err)
	return out
}

func newGrowSet(t *testing.T, tree bool, keys []Key) growSet {
	if !tree {
		return &sliceGrowSet{NewSliceSet(keys)}
	}
	tr, err := Open(t.Context(), dssync.MutexWrap(ds.NewMapDatastore()), ds.NewKey("/t"))
	require.NoError(t, err)
	s := treeGrowSet{tr}
	s.add(t, keys)
	return s
}

// testKeys returns n distinct keys with random timestamps in [1, span].
func testKeys(r *rand.Rand, n int, span uint64) []Key {
	out := make([]Key, n)
	for i := range out {
		var seed [8]byte
		binary.LittleEndian.PutUint64(seed[:], r.Uint64())
		out[i] = Key{TS: 1 + r.Uint64N(span), Hash: sha256.Sum256(seed[:])}
	}
	return NewSliceSet(out)
}

// checkWire requires a message to be what the receiver accepts: every
// frame within the frame size, the whole message within the receiver's
// limits.
func checkWire(t *testing.T, frames []*pb.ReconcileFrame, p *Params) {
	t.Helper()
	for _, f := range frames {
		require.LessOrEqual(t, f.Size(), p.FrameSize, "frame over the frame size")
	}
	_, err := decode(frames, &p.Limits)
	require.NoError(t, err, "message beyond the receiver's limits")
	var size int64
	for _, f := range frames {
		size += int64(f.Size())
	}
	require.LessOrEqual(t, size, p.Limits.MaxMessageBytes(len(frames)), "message past the bytes its limits allow")
}

// checkAllowance requires an initiator's message to carry at most the
// bytes any message may (messageAllowance) beyond its items' and frames'
// own fields: a receiver holds a whole turn in memory.
func checkAllowance(t *testing.T, frames []*pb.ReconcileFrame, p *Params) {
	t.Helper()
	var size, items int64
	for _, f := range frames {
		size += int64(f.Size())
		items += int64(len(f.Items))
	}
	bound := messageAllowance(p) + items*itemWireMax + int64(len(frames))*frameWireMax
	require.LessOrEqual(t, size, bound, "message past the allowance of any message")
}

// sessionResult is what one checked session produced.
type sessionResult struct {
	ini, res   Diff
	complete   bool
	unresolved []Range
	messages   int
	bytes      int64
}

// runChecked runs one session between an initiator over a and a
// responder over b, checking every message on the way.
func runChecked(t *testing.T, a, b Set, lo, hi Key, p Params) sessionResult {
	t.Helper()
	ctx := t.Context()
	s, err := NewSession(a, lo, hi, p)
	require.NoError(t, err)
	r, err := NewResponder(b, p)
	require.NoError(t, err)
	res := make(map[Key]struct{})
	resHave := make(map[Key]struct{})
	var out sessionResult
	msg, err := s.Start(ctx)
	require.NoError(t, err)
	for {
		checkWire(t, msg, &p)
		checkAllowance(t, msg, &p)
		out.messages++
		out.bytes += framesBytes(msg)
		reply, learned, more, err := r.Respond(ctx, msg)
		require.NoError(t, err)
		for _, h := range learned.Need {
			res[h] = struct{}{}
		}
		for _, h := range learned.Have {
			resHave[h] = struct{}{}
		}
		if !more {
			break
		}
		checkWire(t, reply, &p)
		out.messages++
		out.bytes += framesBytes(reply)
		next, done, err := s.Next(ctx, reply)
		require.NoError(t, err)
		if done && next == nil {
			break
		}
		msg = next
	}
	out.ini = s.Result()
	out.res = Diff{Need: sortedKeys(res), Have: sortedKeys(resHave)}
	out.complete = s.Complete()
	out.unresolved = s.Unresolved()
	require.Equal(t, out.complete, len(out.unresolved) == 0)
	require.LessOrEqual(t, s.Messages(), p.MaxMessages+1)
	return out
}

// converge repeats sessions between a and b, applying what each learned,
// until one completes, and returns how many sessions it took. It checks
// that every session learns only true differences, that both sides learn
// the same, that an incomplete session made progress, and that the sets
// end equal to the union.
func converge(t *testing.T, a, b growSet, p Params, maxSessions int) (sessions int, bytes int64) {
	t.Helper()
	union := NewSliceSet(append(slices.Clone(a.all(t)), b.all(t)...))
	inA, inB := keySet(a.all(t)), keySet(b.all(t))
	for {
		sessions++
		require.LessOrEqual(t, sessions, maxSessions, "too many sessions to converge")
		r := runChecked(t, a, b, Key{}, End, p)
		bytes += r.bytes
		require.Equal(t, r.ini.Need, orNil(r.res.Have), "initiator's need is the responder's have")
		require.Equal(t, r.ini.Have, orNil(r.res.Need), "initiator's have is the responder's need")
		var toA, toB []Key
		for _, k := range r.ini.Need {
			require.True(t, inB[k] && !inA[k], "initiator needs %v", k)
			toA = append(toA, k)
		}
		for _, k := range r.ini.Have {
			require.True(t, inA[k] && !inB[k], "initiator has %v", k)
			toB = append(toB, k)
		}
		a.add(t, toA)
		b.add(t, toB)
		for _, k := range toA {
			inA[k] = true
		}
		for _, k := range toB {
			inB[k] = true
		}
		if r.complete {
			break
		}
		require.NotEmpty(t, append(toA, toB...), "session %d made no progress", sessions)
		require.LessOrEqual(t, len(r.ini.Need)+len(r.ini.Have), p.MaxDiff+2*p.Limits.MaxIDs)
	}
	require.Equal(t, []Key(union), a.all(t), "initiator holds the union")
	require.Equal(t, []Key(union), b.all(t), "responder holds the union")
	return sessions, bytes
}

func keySet(keys []Key) map[Key]bool {
	m := make(map[Key]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

func orNil(k []Key) []Key {
	if k == nil {
		return []Key{}
	}
	return k
}

// ceilingCase is a pair of sets whose difference is many messages large.
// In a bulk case one side holds every difference in long runs, so that
// nearly every reply is full of hashes; in the others the differences
// are scattered and must be found first.
type ceilingCase struct {
	name string
	bulk bool
	make func(r *rand.Rand) (a, b []Key)
}

// sessionBound is the most sessions a case may take to converge under p.
// A bulk case moves a full message of hashes in nearly every reply, and a
// session has MaxMessages/2 replies. A scattered difference is found by
// cutting ranges down and listing them; the bound asks every session to
// learn half a message's worth on average. Both allow three sessions
// more for the start and the end.
func sessionBound(tc ceilingCase, d int, p Params) int {
	perSession := p.Limits.MaxIDs / 2
	if tc.bulk {
		perSession = p.Limits.MaxIDs * (p.MaxMessages / 2)
	}
	return (d+perSession-1)/perSession + 3
}

// ceilingN is the size of a ceiling case: eighty times what one message
// carries under ceilingParams (a fourth of it under the race detector).
const ceilingN = 20_000 / raceScale

var ceilingCases = []ceilingCase{
	{"initiator-empty", true, func(r *rand.Rand) ([]Key, []Key) {
		return nil, testKeys(r, ceilingN, 1<<40)
	}},
	{"initiator-behind-scattered", false, func(r *rand.Rand) ([]Key, []Key) {
		all := testKeys(r, ceilingN, 1<<40)
		return pick(all, func(int) bool { return r.IntN(20) == 0 }), all
	}},
	{"initiator-behind-prefix", true, func(r *rand.Rand) ([]Key, []Key) {
		all := testKeys(r, ceilingN, 1<<40)
		return all[:ceilingN/20], all
	}},
	{"responder-empty", true, func(r *rand.Rand) ([]Key, []Key) {
		return testKeys(r, ceilingN, 1<<40), nil
	}},
	{"two-way", false, func(r *rand.Rand) ([]Key, []Key) {
		all := testKeys(r, ceilingN, 1<<40)
		side := make([]int, len(all))
		for i := range side {
			side[i] = r.IntN(3) // 0 both, 1 only a, 2 only b
		}
		return pick(all, func(i int) bool { return side[i] != 2 }), pick(all, func(i int) bool { return side[i] != 1 })
	}},
	{"disjoint", false, func(r *rand.Rand) ([]Key, []Key) {
		return testKeys(r, ceilingN/2, 1<<40), testKeys(r, ceilingN/2, 1<<40)
	}},
	{"same-timestamps", false, func(r *rand.Rand) ([]Key, []Key) {
		// Few distinct timestamps: cuts must fall between hashes.
		all := testKeys(r, ceilingN/2, 50)
		return pick(all, func(int) bool { return r.IntN(3) == 0 }), pick(all, func(int) bool { return r.IntN(3) != 0 })
	}},
}

func pick(keys []Key, keep func(i int) bool) []Key {
	var out []Key
	for i, k := range keys {
		if keep(i) {
			out = append(out, k)
		}
	}
	return out
}

// symDiff returns how many keys one of the sets holds and the other not.
func symDiff(a, b []Key) int {
	inA, inB := keySet(a), keySet(b)
	d := 0
	for h := range inA {
		if !inB[h] {
			d++
		}
	}
	for h := range inB {
		if !inA[h] {
			d++
		}
	}
	return d
}

// TestNoCeiling reconciles differences about eighty times what one
// message may carry, over the sorted-slice model and over trees in a
// datastore, and requires convergence within a bounded number of
// sessions (sessionBound).
func TestNoCeiling(t *testing.T) {
	p := ceilingParams()
	for i, tc := range ceilingCases {
		for _, tree := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/tree=%v", tc.name, tree), func(t *testing.T) {
				runCeilingCase(t, tc, rand.New(rand.NewPCG(41, uint64(i))), tree, p, 1)
			})
		}
	}
}

// TestNoCeilingTighterLimits runs the scattered cases under limits
// tighter still: fewer items per message, so that ranges must be cut
// down over more rounds, and fewer hashes per message, so that a list
// holds less than a tree leaf may.
func TestNoCeilingTighterLimits(t *testing.T) {
	fewItems := ceilingParams()
	fewItems.Limits.MaxItems = 16
	fewIDs := ceilingParams()
	fewIDs.Limits = Limits{MaxItems: 64, MaxCells: 128, MaxIDs: 64}
	for _, v := range []struct {
		name  string
		p     Params
		scale int // divides the case's size
	}{{"items=16", fewItems, 1}, {"ids=64", fewIDs, 4}} {
		for i, tc := range ceilingCases {
			if tc.bulk {
				continue
			}
			for _, tree := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/tree=%v", v.name, tc.name, tree), func(t *testing.T) {
					runCeilingCase(t, tc, rand.New(rand.NewPCG(100, uint64(i))), tree, v.p, v.scale)
				})
			}
		}
	}
}

func runCeilingCase(t *testing.T, tc ceilingCase, r *rand.Rand, tree bool, p Params, scale int) {
	ka, kb := tc.make(r)
	ka, kb = ka[:len(ka)/scale], kb[:len(kb)/scale]
	d := symDiff(ka, kb)
	bound := sessionBound(tc, d, p)
	sessions, bytes := converge(t, newGrowSet(t, tree, ka), newGrowSet(t, tree, kb), p, bound)
	t.Logf("d=%d: %d sessions (bound %d), %d bytes, %.2f × d·32", d, sessions, bound, bytes,
		float64(bytes)/float64(32*d))
}

// TestNoCeilingWindow reconciles a time window of large sets, so that
// hand-backs and cuts meet the window's bounds.
func TestNoCeilingWindow(t *testing.T) {
	p := ceilingParams()
	r := rand.New(rand.NewPCG(43, 44))
	all := testKeys(r, ceilingN, 1<<20)
	a := NewSliceSet(pick(all, func(int) bool { return r.IntN(4) == 0 }))
	b := NewSliceSet(pick(all, func(int) bool { return r.IntN(4) != 0 }))
	lo, hi := TimeBound(1<<18), TimeBound(3<<18)
	inWindow := func(keys []Key) map[Key]bool {
		m := make(map[Key]bool)
		for _, k := range keys {
			if !k.Less(lo) && k.Less(hi) {
				m[k] = true
			}
		}
		return m
	}
	var need, have []Key
	for sessions := 1; ; sessions++ {
		require.LessOrEqual(t, sessions, 60)
		res := runChecked(t, a, b, lo, hi, p)
		inA, inB := inWindow(a), inWindow(b)
		var toA, toB []Key
		for _, k := range res.ini.Need {
			require.True(t, inB[k] && !inA[k])
			need = append(need, k)
			toA = append(toA, k)
		}
		for _, k := range res.ini.Have {
			require.True(t, inA[k] && !inB[k])
			have = append(have, k)
			toB = append(toB, k)
		}
		a = NewSliceSet(append(slices.Clone([]Key(a)), toA...))
		b = NewSliceSet(append(slices.Clone([]Key(b)), toB...))
		if res.complete {
			break
		}
		for _, u := range res.unresolved {
			require.False(t, u.Lo.Less(lo), "unresolved range below the window")
			require.False(t, hi.Less(u.Hi), "unresolved range above the window")
		}
	}
	require.Equal(t, inWindow(a), inWindow(b))
	require.NotEmpty(t, need)
	require.NotEmpty(t, have)
}

// TestSessionEndsIncomplete checks the end of a session that runs out of
// messages: no error, a last message that needs no answer, and a result
// that is part of the difference.
func TestSessionEndsIncomplete(t *testing.T) {
	p := ceilingParams()
	r := rand.New(rand.NewPCG(45, 46))
	b := testKeys(r, ceilingN, 1<<40)
	res := runChecked(t, NewSliceSet(nil), NewSliceSet(b), Key{}, End, p)
	require.False(t, res.complete)
	require.NotEmpty(t, res.unresolved)
	require.NotEmpty(t, res.ini.Need)
	require.Less(t, len(res.ini.Need), len(b))
	// The responder hands over at most MaxIDs hashes per reply and
	// replies MaxMessages/2 times.
	require.LessOrEqual(t, len(res.ini.Need), p.Limits.MaxIDs*p.MaxMessages/2)
	// Each session learns a good part of what it could.
	require.GreaterOrEqual(t, len(res.ini.Need), p.Limits.MaxIDs*p.MaxMessages/4)
}

// TestMaxDiffEndsSession checks that a session stops learning at MaxDiff.
func TestMaxDiffEndsSession(t *testing.T) {
	p := DefaultParams()
	p.MaxDiff = 3000
	r := rand.New(rand.NewPCG(47, 48))
	b := testKeys(r, 100_000, 1<<40)
	res := runChecked(t, NewSliceSet(nil), NewSliceSet(b), Key{}, End, p)
	require.False(t, res.complete)
	require.GreaterOrEqual(t, len(res.ini.Need), p.MaxDiff)
	require.LessOrEqual(t, len(res.ini.Need), p.MaxDiff+p.maxListed())
}

// TestNoCeilingDefaultParams is the case that used to fail every
// session: an empty initiator against a responder holding more keys than
// one message may carry under the default limits.
func TestNoCeilingDefaultParams(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 1.2M keys")
	}
	p := DefaultParams()
	r := rand.New(rand.NewPCG(49, 50))
	b := testKeys(r, 1_200_000/raceScale, 1<<50)
	res := runChecked(t, NewSliceSet(nil), NewSliceSet(b), Key{}, End, p)
	require.False(t, res.complete)
	require.Greater(t, len(res.ini.Need), 100_000/raceScale, "a session learns a good part of what it may")
}

// TestReplyProportionalToRequest sends one item of a few bytes against a
// large set: the reply lists at most maxListed hashes for it.
func TestReplyProportionalToRequest(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(51, 52))
	set := NewSliceSet(testKeys(r, 200_000, 1<<40))
	for _, p := range []Params{DefaultParams(), ceilingParams()} {
		// Half a frame of hashes and a few items around them.
		bound := int64(p.FrameSize/2 + 1024)
		resp, err := NewResponder(set, p)
		require.NoError(t, err)
		for _, it := range []rangeItem{
			{lo: Key{}, hi: End, mode: pb.Mode_KEYLIST},
			{lo: Key{}, hi: End, mode: pb.Mode_KEYLIST, keys: []Key{set[7]}},
			{lo: Key{}, hi: End, mode: pb.Mode_FINGERPRINT, fp: Aggregate{}.Fingerprint()},
			{lo: Key{}, hi: End, mode: pb.Mode_FINGERPRINT, count: 1, fp: Aggregate{}.AddHash(&set[0].Hash).Fingerprint(), lastTS: set[0].TS},
		} {
			req := encode(&message{items: []rangeItem{it}}, p.FrameSize)
			require.Less(t, framesBytes(req), int64(100))
			out, _, more, err := resp.Respond(ctx, req)
			require.NoError(t, err)
			require.True(t, more)
			checkWire(t, out, &p)
			require.LessOrEqual(t, framesBytes(out), bound, "%v item of %d bytes", it.mode, framesBytes(req))
			m, err := decode(out, &p.Limits)
			require.NoError(t, err)
			require.NotEmpty(t, m.youLack, "the reply makes progress")
			require.LessOrEqual(t, len(m.youLack), p.maxListed())
		}
	}
}

// TestManyKeyListsBuyOneFrame: a request of 2,000 empty key lists, a few
// bytes each, over a set of 200,000 keys (which the receiver would have
// to list in full) gets a reply of at most one frame of hashes, plus an
// item for each range it hands back: not the 8 MB the lists ask for.
func TestManyKeyListsBuyOneFrame(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(57, 58))
	set := NewSliceSet(testKeys(r, 200_000, 1<<40))
	p := DefaultParams()
	const items = 2000
	m := evenItems(set, items, rangeItem{mode: pb.Mode_KEYLIST})
	req := encode(&m, p.FrameSize)
	resp, err := NewResponder(set, p)
	require.NoError(t, err)
	out, _, more, err := resp.Respond(ctx, req)
	require.NoError(t, err)
	require.True(t, more)
	checkWire(t, out, &p)
	bound := replyAllowance(&p, framesBytes(req)) + items*(2*HashSize+64) + 4<<10
	require.LessOrEqual(t, framesBytes(out), bound, "a reply of %d bytes to %d", framesBytes(out), framesBytes(req))
	got, err := decode(out, &p.Limits)
	require.NoError(t, err)
	require.NotEmpty(t, got.youLack, "the reply makes progress")
}

// TestAskedCellsAreServed: cells a request asks for by name are what it
// asked, not what its few bytes buy: four MORE_CELLS items of half a
// frame each are all answered (their ranges, of 15,000 keys each, are
// within what a reply may read for cells past the memos).
func TestAskedCellsAreServed(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(59, 60))
	set := NewSliceSet(testKeys(r, 60_000, 1<<40))
	p := DefaultParams()
	n := uint64(p.maxRangeCells())
	m := evenItems(set, 4, rangeItem{mode: pb.Mode_MORE_CELLS, firstCell: 10, cellCount: n})
	req := encode(&m, p.FrameSize)
	require.Less(t, framesBytes(req), int64(1024))
	resp, err := NewResponder(set, p)
	require.NoError(t, err)
	out, _, _, err := resp.Respond(ctx, req)
	require.NoError(t, err)
	got, err := decode(out, &p.Limits)
	require.NoError(t, err)
	sketches := 0
	for _, it := range got.items {
		if it.mode == pb.Mode_SKETCH {
			require.Len(t, it.cells, int(n))
			sketches++
		}
	}
	require.Equal(t, 4, sketches)
}

// TestManyItemsRequest sends as many small items as the limits allow:
// the reply still fits the limits.
func TestManyItemsRequest(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(53, 54))
	set := NewSliceSet(testKeys(r, 50_000, 1<<40))
	p := ceilingParams()
	var m message
	step := len(set) / p.Limits.MaxItems
	for i := range p.Limits.MaxItems {
		lo := set[i*step]
		hi := End
		if i+1 < p.Limits.MaxItems {
			hi = set[(i+1)*step]
		}
		mode := pb.Mode_KEYLIST
		if i%2 == 1 {
			mode = pb.Mode_FINGERPRINT
		}
		m.items = append(m.items, rangeItem{lo: lo, hi: hi, mode: mode})
	}
	resp, err := NewResponder(set, p)
	require.NoError(t, err)
	out, _, more, err := resp.Respond(ctx, encode(&m, p.FrameSize))
	require.NoError(t, err)
	require.True(t, more)
	checkWire(t, out, &p)
}

// FuzzReplyWithinLimits feeds the responder arbitrary messages: whatever
// a message that passes decode asks, the reply stays within the
// receiver's limits and frame size.
func FuzzReplyWithinLimits(f *testing.F) {
	r := rand.New(rand.NewPCG(55, 56))
	set := NewSliceSet(testKeys(r, 3000, 1<<20))
	p := ceilingParams()
	p.KeyListMax = 2
	for _, m := range []message{
		{items: []rangeItem{{lo: Key{}, hi: End, mode: pb.Mode_KEYLIST}}},
		{items: []rangeItem{{lo: Key{}, hi: End, mode: pb.Mode_FINGERPRINT, fp: Aggregate{}.Fingerprint()}}},
		{items: []rangeItem{{lo: Key{}, hi: End, mode: pb.Mode_FINGERPRINT, count: 5, lastTS: 1 << 19}}},
		{items: []rangeItem{
			{lo: Key{}, hi: set[100], mode: pb.Mode_KEYLIST, keys: []Key{set[50], {TS: set[50].TS + 1, Hash: Hash{1}}}},
			{lo: set[100], hi: set[2000], mode: pb.Mode_MORE_CELLS, cellCount: 200},
			{lo: set[2000], hi: set[2500], mode: pb.Mode_WANT, ids: []ShortID{keyID(&set[2100]), 7}},
			{lo: set[2500], hi: End, mode: pb.Mode_FINGERPRINT, count: 400},
		}},
	} {
		f.Add(delimitedFrames(encode(&m, p.FrameSize)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := parseFrames(data)
		if _, err := decode(in, &p.Limits); err != nil {
			return
		}
		resp, err := NewResponder(set, p)
		require.NoError(t, err)
		out, _, more, err := resp.Respond(context.Background(), in)
		if err != nil {
			require.NotErrorIs(t, err, errOverBudget)
			return
		}
		if more {
			checkWire(t, out, &p)
		}
	})
}

// delimitedFrames writes frames as the stream carries them: each after
// its length as a uvarint.
func delimitedFrames(frames []*pb.ReconcileFrame) []byte {
	var b []byte
	for _, f := range frames {
		m, _ := f.Marshal()
		b = binary.AppendUvarint(b, uint64(len(m)))
		b = append(b, m...)
	}
	return b
}

// parseFrames reads length-delimited frames; it stops at the first that
// does not parse.
func parseFrames(data []byte) []*pb.ReconcileFrame {
	var out []*pb.ReconcileFrame
	for len(data) > 0 {
		n, k := binary.Uvarint(data)
		if k <= 0 || n > uint64(len(data)-k) {
			break
		}
		var f pb.ReconcileFrame
		if f.Unmarshal(data[k:k+int(n)]) != nil {
			break
		}
		out = append(out, &f)
		data = data[k+int(n):]
	}
	return out
}

// TestInitiatorMessageWithinAllowance: an initiator that holds far more
// than its peer lacks sends what the peer lacks a few frames at a time
// (runChecked checks every message against messageAllowance), however
// much the limits would take, and repeated sessions still converge.
func TestInitiatorMessageWithinAllowance(t *testing.T) {
	p := DefaultParams()
	p.FrameSize = 64 << 10
	r := rand.New(rand.NewPCG(49, 50))
	all := testKeys(r, 60_000, 1<<40)
	b := pick(all, func(i int) bool { return i%3 == 0 })
	require.Greater(t, int64(len(all)-len(b))*KeyWireMax, 4*messageAllowance(&p),
		"what the responder lacks takes several messages' allowance")
	converge(t, newGrowSet(t, false, all), newGrowSet(t, false, b), p, 20)
}

// TestCellsPastTheMemosAreBounded: cells past the memos cost a read of
// their range, so a reply reads at most maxReplyScan keys for them; the
// ranges beyond go back to the initiator as fingerprints, and a session
// whose responder hands its sketches back still finds the difference.
func TestCellsPastTheMemosAreBounded(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(63, 64))
	set := NewSliceSet(testKeys(r, 200_000, 1<<40))
	p := DefaultParams()
	m := evenItems(set, 8, rangeItem{mode: pb.Mode_MORE_CELLS, firstCell: cachedCells, cellCount: 64})
	resp, err := NewResponder(set, p)
	require.NoError(t, err)
	out, _, _, err := resp.Respond(ctx, encode(&m, p.FrameSize))
	require.NoError(t, err)
	got, err := decode(out, &p.Limits)
	require.NoError(t, err)
	modes := map[pb.Mode]int{}
	for _, it := range got.items {
		modes[it.mode]++
	}
	perRange := uint64(len(set) / 8)
	require.Equal(t, int(maxReplyScan/perRange), modes[pb.Mode_SKETCH], "sketches read within the bound")
	require.Equal(t, 8-modes[pb.Mode_SKETCH], modes[pb.Mode_FINGERPRINT], "the rest handed back")

	// A session over sets whose difference needs cells past the memos
	// in ranges far above what one reply may read.
	b := pick(set, func(i int) bool { return i%97 != 0 })
	res := runChecked(t, NewSliceSet(b), set, Key{}, End, p)
	require.True(t, res.complete)
	require.Len(t, res.ini.Need, len(set)-len(b))
}

// evenItems returns a message of n items like it over n parts of set of
// about equal counts, the last up to the end of the key space.
func evenItems(set SliceSet, n int, it rangeItem) message {
	var m message
	for i := range n {
		it.lo, it.hi = set[i*len(set)/n], End
		if i+1 < n {
			it.hi = set[(i+1)*len(set)/n]
		}
		m.items = append(m.items, it)
	}
	return m
}

// TestDisjointHalves: two sets that share nothing, each half of 60,000
// keys, with 64 KiB frames: every message stays within its allowance
// (a task sized by its count of cells or hashes alone would pass the
// bytes left), repeated sessions end with the union on both sides, and
// the bytes stay within twice the hashes.
func TestDisjointHalves(t *testing.T) {
	p := DefaultParams()
	p.FrameSize = 64 << 10
	r := rand.New(rand.NewPCG(65, 66))
	all := testKeys(r, 60_000, 1<<40)
	a := pick(all, func(i int) bool { return i%2 == 0 })
	b := pick(all, func(i int) bool { return i%2 == 1 })
	sessions, bytes := converge(t, newGrowSet(t, true, a), newGrowSet(t, true, b), p, 40)
	t.Logf("%d sessions, %.2f × d·32", sessions, float64(bytes)/float64(32*len(all)))
	// Every key crosses once as a key (about 41 bytes); sketches sized
	// from a saturated estimate would add half as much again.
	require.Less(t, float64(bytes), 2.0*float64(32*len(all)))
}

// TestDisjointHalvesAreSplit: two disjoint halves of 300,000 keys have
// equal counts, and the residual of the first sketch saturates far below
// their difference; the range is split rather than sketched in parts
// sized from that estimate (which cost 1.84 × d·32 here, against 1.62).
func TestDisjointHalvesAreSplit(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	all := testKeys(r, 300_000, 1<<50)
	var a, b []Key
	for i, j := range r.Perm(len(all)) {
		if i%2 == 0 {
			a = append(a, all[j])
		} else {
			b = append(b, all[j])
		}
	}
	res := runChecked(t, NewSliceSet(b), NewSliceSet(a), Key{}, End, DefaultParams())
	require.True(t, res.complete)
	require.Len(t, res.ini.Need, len(a))
	require.Less(t, float64(res.bytes), 1.75*float64(32*len(all)))
}
