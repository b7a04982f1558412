package reconcile

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"slices"
)

// This file implements rateless invertible Bloom lookup tables (Yang,
// Gilad and Alizadeh, "Practical Rateless Set Reconciliation", SIGCOMM
// 2024). A set maps to an endless sequence of coded symbols (cells); an
// element falls in cell i with probability 1/(1+i/2), so every prefix of
// the sequence is a sketch of the set, and two parties subtract their
// prefixes and peel off the symmetric difference once the prefix is about
// 1.35 to 1.8 times as long as the difference (more for small ones).
// Because the sequence does not depend on its length, a receiver that
// could not decode asks for the next cells rather than a new sketch.
//
// The elements are short IDs of 8 bytes: a sketch only has to tell which
// messages differ, and the side that lacks them then receives their full
// keys, which it needs anyway. A short ID is the key's timestamp down to
// a window of 2^24 ns (about 17 ms) and the first 3 bytes of its hash
// (keyID), so that the side holding a decoded ID finds its key by
// reading that window of its tree (keysWithIDs): O(log N), not a scan of
// the range. Short elements make a cell 12 bytes instead of 44.

// ShortID is the sketch element of a message (see keyID).
type ShortID uint64

// Short IDs keep a timestamp above its low idWindowBits and the hash's
// first idHashBytes.
const (
	idWindowBits = 24
	idHashBytes  = 3
)

// keyID returns the short ID of a key. Two keys share one only within
// one window and with one 24-bit hash prefix; keys common to both sides
// cancel in the sketches, so only such a pair within the difference
// costs anything (the range falls back to splitting), and the session
// checks every decoded range against the peer's fingerprint.
func keyID(k *Key) ShortID {
	return ShortID(k.TS>>idWindowBits<<idWindowBits |
		uint64(k.Hash[0])<<16 | uint64(k.Hash[1])<<8 | uint64(k.Hash[2]))
}

// window returns the range of keys whose short IDs may be id.
func (id ShortID) window() (lo, hi Key) {
	start := uint64(id) >> idWindowBits << idWindowBits
	if start >= MaxTimestamp-1<<idWindowBits {
		return TimeBound(start), End
	}
	return TimeBound(start), TimeBound(start + 1<<idWindowBits)
}

// cellSize is the wire size of a cell: the XOR of the short IDs (8 bytes),
// the XOR of their 24-bit checksums (3 bytes) and their count modulo 256.
// The short count suffices: a cell counts as pure only when its count is
// ±1, its checksum matches and its element maps to it, and the session
// checks the whole decoded difference against the sender's fingerprint.
const cellSize = 8 + 3 + 1

// MaxSketchCells bounds the length of a sketch and keeps the index
// arithmetic below in range.
const MaxSketchCells = 1 << 20

// cell is a coded symbol.
type cell struct {
	id    uint64
	check uint32
	count int32
}

func (c *cell) toggle(id uint64, check uint32, sign int32) {
	c.id ^= id
	c.check ^= check
	c.count += sign
}

func (c *cell) empty() bool { return c.id == 0 && c.check == 0 && uint8(c.count) == 0 }

// same reports whether c and o hold the same, their counts compared
// modulo 256, as counts travel.
func (c *cell) same(o *cell) bool {
	return c.id == o.id && c.check == o.check && uint8(c.count) == uint8(o.count)
}

// pure reports whether the cell at index idx holds one element alone,
// and which, with its sign: a count of ±1, the element's checksum, and
// an element that falls in this cell.
func (c *cell) pure(idx uint64) (x uint64, sign int32, ok bool) {
	sign = signOf(c.count)
	if (sign != 1 && sign != -1) || checksum(c.id) != c.check || !mapsTo(c.id, idx) {
		return 0, 0, false
	}
	return c.id, sign, true
}

// signOf reads a count modulo 256 as a small signed number.
func signOf(count int32) int32 { return int32(int8(uint8(count))) }

// mix64 is the splitmix64 finaliser: a bijective, non-linear scramble.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// checksum is a non-linear 24-bit function of the element, so that the
// XOR of several checksums is unlikely to be the checksum of the XOR of
// their elements.
func checksum(id uint64) uint32 { return uint32(mix64(id^0x5bd1e9955bd1e995) >> 40) }

// indexSeq yields the indices of the cells an element falls in, in
// increasing order, starting with 0. It uses integer arithmetic (and one
// correctly rounded square root that is checked exactly), so that every
// peer derives the same indices.
type indexSeq struct {
	state uint64
	cur   uint64
}

func newIndexSeq(id uint64) indexSeq { return indexSeq{state: id} }

// next advances to the following index. From index i the next index is
// the smallest j > i with (j+1)(j+2) > (i+1)(i+2)/u for u uniform in
// (0, 1], which makes P(j is an index) = 2/(j+2) = 1/(1+j/2).
func (s *indexSeq) next() uint64 {
	s.state += 0x9e3779b97f4a7c15
	u := mix64(s.state)>>32 + 1 // (0, 2^32]
	i := s.cur
	hi, lo := bits.Mul64((i+1)*(i+2), 1<<32)
	if hi >= u {
		s.cur = math.MaxUint64
		return s.cur
	}
	c, _ := bits.Div64(hi, lo, u)
	if c >= 1<<50 {
		s.cur = math.MaxUint64
		return s.cur
	}
	j := uint64(math.Sqrt(float64(c)))
	if j >= 2 {
		j -= 2
	}
	for (j+1)*(j+2) <= c {
		j++
	}
	if j <= i {
		j = i + 1
	}
	s.cur = j
	return j
}

// addRange toggles an element into cells [first, first+len(cells)) with
// the given sign.
func addRange(cells []cell, first uint64, id ShortID, sign int32) {
	x := uint64(id)
	ck := checksum(x)
	end := first + uint64(len(cells))
	s := newIndexSeq(x)
	for i := uint64(0); i < end; i = s.next() {
		if i >= first {
			cells[i-first].toggle(x, ck, sign)
		}
	}
}

// mapsTo reports whether an element falls in cell idx.
func mapsTo(id uint64, idx uint64) bool {
	s := newIndexSeq(id)
	i := uint64(0)
	for i < idx {
		i = s.next()
	}
	return i == idx
}

// encodeCells appends the wire form of cells to b.
func encodeCells(b []byte, cells []cell) []byte {
	for i := range cells {
		c := &cells[i]
		b = binary.LittleEndian.AppendUint64(b, c.id)
		b = append(b, byte(c.check), byte(c.check>>8), byte(c.check>>16), uint8(c.count))
	}
	return b
}

var errCellSize = errors.New("sketch cells are not a whole number of 12-byte cells")

// decodeCells parses the wire form of cells.
func decodeCells(b []byte) ([]cell, error) {
	if len(b)%cellSize != 0 {
		return nil, errCellSize
	}
	out := make([]cell, len(b)/cellSize)
	for i := range out {
		p := b[i*cellSize:]
		out[i].id = binary.LittleEndian.Uint64(p)
		out[i].check = uint32(p[8]) | uint32(p[9])<<8 | uint32(p[10])<<16
		out[i].count = int32(p[11])
	}
	return out, nil
}

// peeler decodes the difference between a remote sketch and the local
// one. It keeps the difference cells and what it has decoded, so that
// more cells can be added later (rateless). Not safe for concurrent use.
type peeler struct {
	diff   []cell
	remote []ShortID // elements only the remote side has
	local  []ShortID // elements only the local side has
	seen   map[ShortID]struct{}
	// spare holds cells from index spareFrom on, of which only the
	// counts (remote less local) are known: the sender sent their counts
	// alone (rangeItem.counts), and they serve remaining only.
	spare     []cell
	spareFrom uint64
}

// extend adds the next cells: the remote ones and the local ones for the
// same indices, which must be as many. Elements already decoded are taken
// out of the new cells at once.
func (p *peeler) extend(remote, local []cell) {
	first := uint64(len(p.diff))
	for i := range remote {
		d := remote[i]
		d.toggle(local[i].id, local[i].check, -local[i].count)
		p.diff = append(p.diff, d)
	}
	for _, id := range p.remote {
		addRange(p.diff[first:], first, id, -1)
	}
	for _, id := range p.local {
		addRange(p.diff[first:], first, id, +1)
	}
}

// cells returns how many cells the peeler holds.
func (p *peeler) cells() int { return len(p.diff) }

// peel decodes as far as the cells allow and reports whether every cell
// is now empty, which means the whole difference is known.
func (p *peeler) peel() bool {
	if p.seen == nil {
		p.seen = make(map[ShortID]struct{})
	}
	queue := make([]uint64, 0, len(p.diff))
	for i := range p.diff {
		queue = append(queue, uint64(i))
	}
	for len(queue) > 0 {
		idx := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		c := &p.diff[idx]
		x, sign, ok := c.pure(idx)
		if !ok {
			continue
		}
		id := ShortID(x)
		if _, dup := p.seen[id]; dup {
			// Only a hostile sketch decodes an element twice; taking it
			// out again would corrupt other cells.
			continue
		}
		p.seen[id] = struct{}{}
		if sign == 1 {
			p.remote = append(p.remote, id)
		} else {
			p.local = append(p.local, id)
		}
		ck := c.check
		s := newIndexSeq(x)
		for i := uint64(0); i < uint64(len(p.diff)); i = s.next() {
			p.diff[i].toggle(x, ck, -sign)
			queue = append(queue, i)
		}
	}
	for i := range p.diff {
		if !p.diff[i].empty() {
			return false
		}
	}
	return true
}

func appendShortID(b []byte, id ShortID) []byte {
	return binary.LittleEndian.AppendUint64(b, uint64(id))
}

func readShortID(b []byte) ShortID { return ShortID(binary.LittleEndian.Uint64(b)) }

// remaining estimates how many elements the peeler still holds
// undecoded, given the net difference delta (remote count minus local
// count, known from the two sides' counts). Cell i holds each undecoded
// element with probability ρ = 2/(i+2), so its count varies by about
// d·ρ(1−ρ) around the net part ρ·delta'; averaging over the cells
// estimates d even when delta is near zero (changes on both sides), which
// is when the counts of the two sets say nothing. Counts travel modulo
// 256, so each is read as the value nearest its expectation. Each cell
// adds one degree of freedom, whole or spare: n cells read d within about
// √(2/n) of it (27 % from the 28 cells of a first sketch alone, 15 % with
// 64 spare counts).
func (p *peeler) remaining(delta int64) float64 {
	net := float64(delta - int64(len(p.remote)) + int64(len(p.local)))
	var sum float64
	n := 0
	term := func(i int, count int32) {
		rho := 2 / float64(i+2)
		want := net * rho
		c := float64(signOf(count))
		c += 256 * math.Round((want-c)/256)
		sum += (c - want) * (c - want) / (rho * (1 - rho))
		n++
	}
	for i := 2; i < len(p.diff); i++ {
		term(i, p.diff[i].count)
	}
	if len(p.spare) > 0 && p.spareFrom+uint64(len(p.spare)) > uint64(len(p.diff)) {
		// The decoded elements are in the spare counts still.
		spare := slices.Clone(p.spare)
		for _, id := range p.remote {
			addRange(spare, p.spareFrom, id, -1)
		}
		for _, id := range p.local {
			addRange(spare, p.spareFrom, id, +1)
		}
		for j := range spare {
			if i := p.spareFrom + uint64(j); i >= 2 && i >= uint64(len(p.diff)) {
				term(int(i), spare[j].count)
			}
		}
	}
	if n == 0 {
		return 0
	}
	return max(sum/float64(n), 0)
}

// setSpare keeps the counts of the cells from index first on that the
// sender sent without their IDs, less the local counts of the same cells.
func (p *peeler) setSpare(first uint64, remote []int8, local []cell) {
	p.spareFrom = first
	p.spare = make([]cell, len(remote))
	for i, c := range remote {
		p.spare[i].count = int32(c) - local[i].count
	}
}

// residue reports how many cells are not empty after a peel that
// failed. An element still undecoded falls in such cells alone (elements
// empty a cell between them only by chance of 2^-64).
func (p *peeler) residue() int {
	n := 0
	for i := range p.diff {
		if !p.diff[i].empty() {
			n++
		}
	}
	return n
}

// twins reports whether what a failed peel left is a group of elements
// that fall in the same cells, every one of them so far: the cells not
// empty are all equal (one such cell will do: an element alone in a
// cell peels, so two or more share it, and no other). More cells part
// such a group only where one of its elements has an index the others
// lack, and none has below the cells there are; a sketch of a range
// that holds only some of the group parts it at once.
func (p *peeler) twins() bool {
	var first *cell
	n := 0
	for i := range p.diff {
		c := &p.diff[i]
		if c.empty() {
			continue
		}
		if first == nil {
			first = c
		} else if !c.same(first) {
			return false
		}
		n++
	}
	return n > 0
}

// groupCount is the count of the first cell not empty, modulo 256 as
// counts travel, read as signed: for twins, how many more of the group
// the remote side holds than the local one.
func (p *peeler) groupCount() int8 {
	for i := range p.diff {
		if !p.diff[i].empty() {
			return int8(p.diff[i].count)
		}
	}
	return 0
}

// frees reports whether id, taken out of the cells as a local element,
// could be one of what is left undecoded and would free another: every
// cell it falls in is not empty, and in one of them what is left once it
// is out is a single element (a count of ±1, its checksum, and a cell it
// falls in). A local element paired with a remote one in all its cells
// passes; one of both sides' fails but by a chance of about 2^-24.
func (p *peeler) frees(id ShortID) bool {
	x, ck := uint64(id), checksum(uint64(id))
	free := false
	s := newIndexSeq(x)
	for i := uint64(0); i < uint64(len(p.diff)); i = s.next() {
		c := p.diff[i]
		if c.empty() {
			return false
		}
		if !free {
			c.toggle(x, ck, +1)
			_, _, pure := c.pure(i)
			free = pure && c.id != 0
		}
	}
	return free
}

// assist takes elements of the local set out of the cells as decoded,
// local elements (and the remote set's named by a MATCH answer as
// remote ones), and peels again: a remote element and a local one that
// cancel in every cell the peeler has (their counts summing to zero)
// come apart once the local one, which its holder can name, is gone. The
// caller offers elements it holds that would free others (frees); one
// it holds that the remote side holds too is not in the difference, and
// taking it out leaves cells that do not empty.
// It reports whether every cell is now empty; if not, the peeler is as
// it was.
func (p *peeler) assist(local, remote []ShortID) bool {
	if p.seen == nil {
		p.seen = make(map[ShortID]struct{})
	}
	diff := slices.Clone(p.diff)
	nr, nl := len(p.remote), len(p.local)
	take := func(ids []ShortID, list *[]ShortID, sign int32) {
		for _, id := range ids {
			if _, dup := p.seen[id]; dup {
				continue
			}
			p.seen[id] = struct{}{}
			*list = append(*list, id)
			addRange(p.diff, 0, id, sign)
		}
	}
	take(local, &p.local, +1)
	take(remote, &p.remote, -1)
	if p.peel() {
		return true
	}
	for _, id := range p.remote[nr:] {
		delete(p.seen, id)
	}
	for _, id := range p.local[nl:] {
		delete(p.seen, id)
	}
	p.diff, p.remote, p.local = diff, p.remote[:nr], p.local[:nl]
	return false
}
