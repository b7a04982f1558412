package reconcile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/storesync/storesync/pb"
)

// rangeItem is a decoded pb.RangeItem with absolute bounds [lo, hi).
type rangeItem struct {
	lo, hi    Key
	mode      pb.Mode
	fp        Fingerprint
	count     uint64
	lastTS    uint64 // the sender's newest timestamp in the range; 0 if not sent
	firstCell uint64
	cellCount uint64
	cells     []cell
	counts    []int8   // SKETCH: the counts of the cells after cells (estimateCounts)
	keys      []Key    // KEYLIST
	answers   []answer // SKIP: the answer to a WANT of the range
	ids       []ShortID
	pattern   []uint64 // MATCH, to the responder: cell indices (match.go)
}

// message is one side's turn: range items sorted by bounds and not
// overlapping, and the hashes the receiver lacks.
type message struct {
	items   []rangeItem
	youLack []Key
}

// needsReply reports whether the message asks the receiver for anything.
// A message that does not is the last of a session.
func (m *message) needsReply() bool {
	for i := range m.items {
		if m.items[i].mode != pb.Mode_SKIP {
			return true
		}
	}
	return false
}

// ErrBadFrame is wrapped by every error about a malformed frame from a
// peer.
var ErrBadFrame = errors.New("malformed reconciliation frame")

func badFrame(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadFrame}, args...)...)
}

// boundWire returns the wire form of a bound: its timestamp and its hash
// with trailing zero bytes dropped.
func boundWire(k Key) (uint64, []byte) {
	p := bytes.TrimRight(k.Hash[:], "\x00")
	if len(p) == 0 {
		return k.TS, nil
	}
	return k.TS, p
}

func boundFromWire(ts uint64, prefix []byte) (Key, error) {
	if len(prefix) > HashSize {
		return Key{}, badFrame("bound prefix of %d bytes", len(prefix))
	}
	k := Key{TS: ts}
	copy(k.Hash[:], prefix)
	return k, nil
}

// minimalBound returns a short bound b with a < b <= c: it cuts a sorted
// run of keys between a and c.
func minimalBound(a, c Key) Key {
	if a.TS < c.TS {
		return TimeBound(c.TS)
	}
	b := Key{TS: c.TS}
	for i := range c.Hash {
		b.Hash[i] = c.Hash[i]
		if c.Hash[i] != a.Hash[i] {
			break
		}
	}
	return b
}

// frameOverhead is what encode keeps free in a frame for the frame's own
// fields and the length prefix.
const frameOverhead = 64

// encode turns a message into frames of at most limit bytes each
// (protobuf size). Items must already fit a frame on their own; gaps
// between items become SKIP items. It always returns at least one frame.
func encode(m *message, limit int) []*pb.ReconcileFrame {
	var frames []*pb.ReconcileFrame
	var f *pb.ReconcileFrame
	var prev Key // previous bound within f
	size := 0
	open := func(lo Key) {
		f = &pb.ReconcileFrame{}
		f.LowerTs, f.LowerPrefix = boundWire(lo)
		frames = append(frames, f)
		prev, size = lo, f.Size()+frameOverhead
	}
	addItem := func(it *pb.RangeItem, hi Key) {
		if hi == End {
			it.UpperTs = 0
		} else {
			it.UpperTs = 1 + hi.TS - prev.TS
			_, it.UpperPrefix = boundWire(hi)
		}
		f.Items = append(f.Items, it)
		size += it.Size() + 6
		prev = hi
	}
	for i := range m.items {
		it := &m.items[i]
		w := itemWire(it)
		need := w.Size() + 2*(2*HashSize+24)
		if f == nil || size+need > limit || (prev != it.lo && size+need+HashSize+16 > limit) {
			open(it.lo)
		}
		if prev != it.lo {
			addItem(&pb.RangeItem{Mode: pb.Mode_SKIP}, it.lo)
		}
		addItem(w, it.hi)
	}
	// The keys the receiver lacks, in key order, as a key list per frame
	// (each frame's list starts from 0).
	keys := slices.SortedFunc(slices.Values(m.youLack), func(a, b Key) int { return a.Compare(b) })
	keys = slices.Compact(keys)
	for len(keys) > 0 || f == nil {
		if f == nil || len(f.YouLack) > 0 || size+2*KeyWireMax > limit {
			open(Key{})
		}
		n, room := 0, limit-size-binary.MaxVarintLen32
		for prevTS := uint64(0); n < len(keys); n++ {
			c := uvarintLen(keys[n].TS-prevTS) + HashSize
			if c > room {
				break
			}
			room -= c
			prevTS = keys[n].TS
		}
		f.YouLack = AppendKeys(nil, keys[:n])
		size += len(f.YouLack) + binary.MaxVarintLen32
		keys = keys[n:]
	}
	for _, fr := range frames[:len(frames)-1] {
		fr.More = true
	}
	return frames
}

// itemWire returns the wire form of an item without its upper bound.
func itemWire(it *rangeItem) *pb.RangeItem {
	w := &pb.RangeItem{Mode: it.mode, Count: it.count, FirstCell: it.firstCell, CellCount: it.cellCount}
	if it.mode == pb.Mode_FINGERPRINT || it.mode == pb.Mode_SKETCH {
		w.Fingerprint = append([]byte(nil), it.fp[:]...)
	}
	if it.lastTS > 0 {
		w.LastTs = it.lastTS + 1
	}
	if len(it.cells) > 0 {
		w.Cells = encodeCells(make([]byte, 0, len(it.cells)*cellSize), it.cells)
	}
	if len(it.counts) > 0 {
		w.Counts = make([]byte, len(it.counts))
		for i, c := range it.counts {
			w.Counts[i] = byte(c)
		}
	}
	if len(it.keys) > 0 {
		w.Keys = AppendKeys(nil, it.keys)
	}
	if len(it.answers) > 0 {
		w.Answers = appendAnswers(nil, it.answers)
	}
	if len(it.ids) > 0 {
		w.Ids = make([]byte, 0, len(it.ids)*8)
		for _, id := range it.ids {
			w.Ids = appendShortID(w.Ids, id)
		}
	}
	if len(it.pattern) > 0 {
		w.Pattern = appendPattern(nil, it.pattern)
	}
	return w
}

// decode checks and parses the frames of one message. Items of a message
// must be sorted and must not overlap, across frames too.
func decode(frames []*pb.ReconcileFrame, lim *Limits) (*message, error) {
	m := &message{}
	var floor Key // no item may start below the end of the previous one
	cells, ids, listed, answers := 0, 0, 0, 0
	for fi, f := range frames {
		if fi < len(frames)-1 && !f.More || fi == len(frames)-1 && f.More {
			return nil, badFrame("frame %d: wrong continuation flag", fi)
		}
		lo, err := boundFromWire(f.LowerTs, f.LowerPrefix)
		if err != nil {
			return nil, err
		}
		if len(f.Items) > 0 && lo.Less(floor) {
			return nil, badFrame("frame %d overlaps the previous one", fi)
		}
		lack, err := ParseKeys(f.YouLack, lim.MaxIDs-len(m.youLack))
		switch {
		case errors.Is(err, ErrTooManyKeys):
			return nil, fmt.Errorf("%w: message exceeds its limits", ErrTooLarge)
		case err != nil:
			return nil, badFrame("frame %d: you_lack: %v", fi, err)
		}
		m.youLack = append(m.youLack, lack...)
		for ii, w := range f.Items {
			if lo == End {
				return nil, badFrame("item %d after the end of the key space", ii)
			}
			hi := End
			if w.UpperTs != 0 {
				d := w.UpperTs - 1
				if d > End.TS-lo.TS {
					return nil, badFrame("item %d: bound overflows", ii)
				}
				if hi, err = boundFromWire(lo.TS+d, w.UpperPrefix); err != nil {
					return nil, err
				}
			} else if len(w.UpperPrefix) > 0 {
				return nil, badFrame("item %d: end bound with a prefix", ii)
			}
			if !lo.Less(hi) {
				return nil, badFrame("item %d: empty or reversed range", ii)
			}
			it, err := itemFromWire(w, lo, hi, lim.MaxIDs-listed, lim.MaxIDs-len(m.youLack)-answers)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", ii, err)
			}
			cells += len(it.cells) + len(it.counts)
			if it.mode == pb.Mode_MORE_CELLS {
				cells += int(it.cellCount)
			}
			ids += len(it.ids) + len(it.pattern)
			listed += len(it.keys)
			answers += len(it.answers)
			if it.mode != pb.Mode_SKIP || len(it.ids) > 0 || len(it.answers) > 0 {
				m.items = append(m.items, it)
			}
			lo = hi
		}
		if len(f.Items) > 0 {
			floor = lo
		}
		if len(m.items) > lim.MaxItems || cells > lim.MaxCells || ids > lim.MaxIDs ||
			listed > lim.MaxIDs || len(m.youLack)+answers > lim.MaxIDs {
			return nil, fmt.Errorf("%w: message exceeds its limits", ErrTooLarge)
		}
	}
	return m, nil
}

// itemFromWire checks one item's fields against its mode; it may list at
// most maxKeys keys and maxAnswers answers.
func itemFromWire(w *pb.RangeItem, lo, hi Key, maxKeys, maxAnswers int) (rangeItem, error) {
	it := rangeItem{lo: lo, hi: hi, mode: w.Mode, count: w.Count, firstCell: w.FirstCell, cellCount: w.CellCount}
	if _, ok := pb.Mode_name[int32(w.Mode)]; !ok {
		return it, badFrame("unknown mode %d", w.Mode)
	}
	hasFP := w.Mode == pb.Mode_FINGERPRINT || w.Mode == pb.Mode_SKETCH
	if hasFP != (len(w.Fingerprint) == FingerprintSize) || (!hasFP && len(w.Fingerprint) > 0) {
		return it, badFrame("fingerprint of %d bytes in a %v item", len(w.Fingerprint), w.Mode)
	}
	copy(it.fp[:], w.Fingerprint)
	if w.LastTs > 0 {
		if w.Mode != pb.Mode_FINGERPRINT || w.LastTs-1 > MaxTimestamp {
			return it, badFrame("bad last_ts")
		}
		it.lastTS = w.LastTs - 1
	}
	if w.Count > MaxCount {
		return it, badFrame("count %d", w.Count)
	}
	if w.FirstCell > MaxSketchCells || w.CellCount > MaxSketchCells ||
		w.FirstCell+w.CellCount > MaxSketchCells {
		return it, badFrame("cell range [%d, +%d)", w.FirstCell, w.CellCount)
	}
	if w.Mode == pb.Mode_MORE_CELLS && w.CellCount == 0 ||
		w.CellCount > 0 && w.Mode != pb.Mode_MORE_CELLS && w.Mode != pb.Mode_MATCH {
		return it, badFrame("cell_count in a %v item", w.Mode)
	}
	var err error
	if it.pattern, err = parsePattern(w); err != nil {
		return it, err
	}
	if (w.Mode == pb.Mode_SKETCH) != (len(w.Cells) > 0) {
		return it, badFrame("cells in a %v item", w.Mode)
	}
	if it.cells, err = decodeCells(w.Cells); err != nil {
		return it, fmt.Errorf("%w: %v", ErrBadFrame, err)
	}
	if len(w.Counts) > 0 && w.Mode != pb.Mode_SKETCH || len(w.Counts) > maxEstimateCounts {
		return it, badFrame("%d counts in a %v item", len(w.Counts), w.Mode)
	}
	if w.FirstCell+uint64(len(it.cells))+uint64(len(w.Counts)) > MaxSketchCells {
		return it, badFrame("sketch longer than %d cells", MaxSketchCells)
	}
	if len(w.Counts) > 0 {
		it.counts = make([]int8, len(w.Counts))
		for i, c := range w.Counts {
			it.counts[i] = int8(c)
		}
	}
	if len(w.Keys) > 0 && w.Mode != pb.Mode_KEYLIST && w.Mode != pb.Mode_MATCH {
		return it, badFrame("keys in a %v item", w.Mode)
	}
	it.keys, err = ParseKeys(w.Keys, maxKeys)
	switch {
	case errors.Is(err, ErrTooManyKeys):
		return it, fmt.Errorf("%w: message exceeds its limits", ErrTooLarge)
	case err != nil:
		return it, badFrame("keys: %v", err)
	}
	if len(w.Answers) > 0 && w.Mode != pb.Mode_SKIP {
		return it, badFrame("answers in a %v item", w.Mode)
	}
	it.answers, err = parseAnswers(w.Answers, maxAnswers)
	switch {
	case errors.Is(err, ErrTooManyKeys):
		return it, fmt.Errorf("%w: message exceeds its limits", ErrTooLarge)
	case err != nil:
		return it, err
	}
	if len(it.keys) > 0 && (it.keys[0].Less(lo) || !it.keys[len(it.keys)-1].Less(hi)) {
		return it, badFrame("a listed key outside its range")
	}
	if len(w.Ids)%8 != 0 || (len(w.Ids) > 0 && w.Mode != pb.Mode_WANT && w.Mode != pb.Mode_SKIP &&
		(w.Mode != pb.Mode_MATCH || len(w.Pattern) == 0 || len(w.Ids) > 8*maxMatchKeys)) ||
		(w.Mode == pb.Mode_WANT && len(w.Ids) == 0) {
		return it, badFrame("ids of %d bytes in a %v item", len(w.Ids), w.Mode)
	}
	for p := w.Ids; len(p) > 0; p = p[8:] {
		it.ids = append(it.ids, readShortID(p))
	}
	return it, nil
}

// MaxCount bounds the count a peer may claim for a range.
const MaxCount = 1 << 48
