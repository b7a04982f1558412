package reconcile

import (
	"bytes"
	"errors"
	"fmt"

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
	hashes    []Hash
	ids       []ShortID
}

// message is one side's turn: range items sorted by bounds and not
// overlapping, and the hashes the receiver lacks.
type message struct {
	items   []rangeItem
	youLack []Hash
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
	hashes := m.youLack
	for len(hashes) > 0 || f == nil {
		if f == nil || size+2*HashSize > limit {
			open(Key{})
		}
		n := min(len(hashes), (limit-size)/HashSize-1)
		buf := make([]byte, 0, len(f.YouLack)+n*HashSize)
		buf = append(buf, f.YouLack...)
		for _, h := range hashes[:n] {
			buf = append(buf, h[:]...)
		}
		f.YouLack = buf
		size += n * HashSize
		hashes = hashes[n:]
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
	if len(it.hashes) > 0 {
		w.Hashes = make([]byte, 0, len(it.hashes)*HashSize)
		for _, h := range it.hashes {
			w.Hashes = append(w.Hashes, h[:]...)
		}
	}
	if len(it.ids) > 0 {
		w.Ids = make([]byte, 0, len(it.ids)*8)
		for _, id := range it.ids {
			w.Ids = appendShortID(w.Ids, id)
		}
	}
	return w
}

// decode checks and parses the frames of one message. Items of a message
// must be sorted and must not overlap, across frames too.
func decode(frames []*pb.ReconcileFrame, lim *Limits) (*message, error) {
	m := &message{}
	var floor Key // no item may start below the end of the previous one
	cells, ids, hashes := 0, 0, 0
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
		if len(f.YouLack)%HashSize != 0 {
			return nil, badFrame("you_lack of %d bytes", len(f.YouLack))
		}
		for p := f.YouLack; len(p) > 0; p = p[HashSize:] {
			m.youLack = append(m.youLack, Hash(p[:HashSize]))
		}
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
			it, err := itemFromWire(w, lo, hi)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", ii, err)
			}
			cells += len(it.cells) + int(it.cellCount)
			ids += len(it.ids)
			hashes += len(it.hashes)
			if it.mode != pb.Mode_SKIP || len(it.ids) > 0 {
				m.items = append(m.items, it)
			}
			lo = hi
		}
		if len(f.Items) > 0 {
			floor = lo
		}
		if len(m.items) > lim.MaxItems || cells > lim.MaxCells || ids > lim.MaxIDs ||
			hashes > lim.MaxIDs || len(m.youLack) > lim.MaxIDs {
			return nil, fmt.Errorf("%w: message exceeds its limits", ErrTooLarge)
		}
	}
	return m, nil
}

// itemFromWire checks one item's fields against its mode.
func itemFromWire(w *pb.RangeItem, lo, hi Key) (rangeItem, error) {
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
	if (w.Mode == pb.Mode_MORE_CELLS) != (w.CellCount > 0) {
		return it, badFrame("cell_count in a %v item", w.Mode)
	}
	if (w.Mode == pb.Mode_SKETCH) != (len(w.Cells) > 0) {
		return it, badFrame("cells in a %v item", w.Mode)
	}
	var err error
	if it.cells, err = decodeCells(w.Cells); err != nil {
		return it, fmt.Errorf("%w: %v", ErrBadFrame, err)
	}
	if w.FirstCell+uint64(len(it.cells)) > MaxSketchCells {
		return it, badFrame("sketch longer than %d cells", MaxSketchCells)
	}
	if len(w.Hashes)%HashSize != 0 || (len(w.Hashes) > 0 && w.Mode != pb.Mode_KEYLIST) {
		return it, badFrame("hashes of %d bytes in a %v item", len(w.Hashes), w.Mode)
	}
	for p := w.Hashes; len(p) > 0; p = p[HashSize:] {
		it.hashes = append(it.hashes, Hash(p[:HashSize]))
	}
	if len(w.Ids)%8 != 0 || (len(w.Ids) > 0 && w.Mode != pb.Mode_WANT && w.Mode != pb.Mode_SKIP) ||
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
