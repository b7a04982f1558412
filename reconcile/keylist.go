package reconcile

import (
	"context"

	"github.com/storesync/storesync/pb"
)

// onKeyList compares the peer's complete list of a range with ours: we
// learn both directions at once, give the peer what it lacks and tell it
// which of its listed hashes we lack (a SKIP item with their short IDs).
//
// The peer lists few keys, but we may hold many more: a node far behind
// lists nothing. What we give for one list is bounded (maxListed, and
// what is left of the reply), and so is the scan: it stops at the first
// key we could not give. The range is then cut where what lies below the
// cut is fully known, that part is resolved and the rest handed back.
// The list carries hashes, not keys, so a listed hash we lack cannot be
// placed against our keys; the cut must leave no such hash in doubt.
// Listed hashes come in key order, so the cut goes just above the last
// of our keys the list matched: every unmatched hash listed before it
// lies below the cut, every one listed after it above. When nothing
// useful lies below such a cut, we list our own first keys instead: the
// peer, which holds few keys in the range, resolves that prefix at once,
// even in its last message of a session.
func (s *side) onKeyList(ctx context.Context, it *rangeItem) error {
	room := s.room()
	limit := min(s.p.maxListed(), room.lack)
	if room.items < 0 || limit < 1 {
		// No room for an item, or for a single hash: the reply is full.
		s.handBack(it.lo, it.hi)
		return nil
	}
	index := make(map[Key]int, len(it.keys))
	for i, k := range it.keys {
		index[k] = i
	}
	var (
		scan      []Key // every key scanned, in order
		extras    []Key
		matched   = make(map[Key]struct{})
		lastMatch = -1 // list index of the last of our keys the list matched
		lastKey   Key  // that key
		before    int  // extras below it
		prev      Key  // the last key scanned
		scanned   bool
		stop      Key // the first key not scanned
	)
	err := s.set.Iterate(ctx, it.lo, it.hi, func(k Key) error {
		if i, ok := index[k]; ok {
			matched[k] = struct{}{}
			lastMatch, lastKey, before = i, k, len(extras)
		} else {
			if len(extras) == limit {
				stop = k
				return errStop
			}
			extras = append(extras, k)
		}
		prev, scanned = k, true
		scan = append(scan, k)
		return nil
	})
	if err != nil && err != errStop {
		return err
	}
	if err == nil {
		// The whole range was scanned: resolve it.
		return s.resolveKeyList(ctx, it.lo, it.hi, extras, unmatched(it.keys, matched, len(it.keys)))
	}
	switch {
	case len(matched) == len(index) && scanned:
		// Every listed hash is one of ours below the stop, so below a
		// cut between the last key scanned and the stop, the list and
		// our keys differ by the extras alone.
		cut := minimalBound(prev, stop)
		if err := s.resolveKeyList(ctx, it.lo, cut, extras, nil); err != nil {
			return err
		}
		s.handBack(cut, it.hi)
		return nil
	case lastMatch >= 0:
		missing := unmatched(it.keys, matched, lastMatch)
		if before == 0 && len(missing) == 0 {
			break
		}
		cut := lastKey.Next()
		if err := s.resolveKeyList(ctx, it.lo, cut, extras[:before], missing); err != nil {
			return err
		}
		s.handBack(cut, it.hi)
		return nil
	}
	return s.listPrefix(ctx, it.lo, it.hi, append(scan, stop))
}

// listPrefix lists our first keys of [lo, hi), as many as one item and
// the reply allow, and hands the rest of the range back. keys are our
// first keys of the range, in order; a range with no room for a list is
// split instead.
func (s *side) listPrefix(ctx context.Context, lo, hi Key, keys []Key) error {
	room := s.room()
	n := min(len(keys)-1, s.p.maxListed(), room.listed)
	if n < 1 || room.items < 1 {
		return s.split(ctx, lo, hi)
	}
	cut := minimalBound(keys[n-1], keys[n])
	if err := s.emit(ctx, rangeItem{lo: lo, hi: cut, mode: pb.Mode_KEYLIST, keys: keys[:n]}); err != nil {
		return err
	}
	s.handBack(cut, hi)
	return nil
}

// resolveKeyList settles [lo, hi) of a peer's key list: it gives the peer
// extras and tells it that we lack missing, or, when the reply has no
// room for both, hands the range back.
func (s *side) resolveKeyList(ctx context.Context, lo, hi Key, extras []Key, missing []Key) error {
	need := budget{lack: len(extras)}
	var skip rangeItem
	if len(missing) > 0 {
		skip = rangeItem{lo: lo, hi: hi, mode: pb.Mode_SKIP, ids: make([]ShortID, len(missing))}
		for i := range missing {
			skip.ids[i] = keyID(&missing[i])
		}
		need = need.plus(costOf(&skip))
	}
	if !s.room().covers(need) {
		s.handBack(lo, hi)
		return nil
	}
	s.learnNeed(missing)
	if err := s.give(ctx, extras); err != nil {
		return err
	}
	if len(missing) > 0 {
		return s.emit(ctx, skip)
	}
	return nil
}

// unmatched returns the listed keys below index end that we did not
// match, in list order (a list holds no key twice).
func unmatched(keys []Key, matched map[Key]struct{}, end int) []Key {
	var out []Key
	for _, k := range keys[:end] {
		if _, ok := matched[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}
