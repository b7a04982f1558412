package node

import (
	"slices"

	"github.com/storesync/storesync/reconcile"
)

// pendingKeys holds the keys of a scope's messages that are committed but
// not yet in its tree (journal.go). Messages mostly arrive in time order,
// so keys above every pending key are appended to a sorted slice and
// found by comparing with its last; the others, older than the newest
// pending key when they came, wait in a map.
type pendingKeys struct {
	asc  []reconcile.Key            // strictly ascending
	rest map[reconcile.Key]struct{} // each below asc's last when added
}

// has reports whether k is pending.
func (p *pendingKeys) has(k reconcile.Key) bool {
	n := len(p.asc)
	if n == 0 || k.Compare(p.asc[n-1]) > 0 {
		// rest holds only keys below asc's last, which never falls.
		return false
	}
	if _, ok := slices.BinarySearchFunc(p.asc, k, reconcile.Key.Compare); ok {
		return true
	}
	_, ok := p.rest[k]
	return ok
}

// add makes k pending; k must not be.
func (p *pendingKeys) add(k reconcile.Key) {
	if n := len(p.asc); n == 0 || k.Compare(p.asc[n-1]) > 0 {
		p.asc = append(p.asc, k)
		return
	}
	if p.rest == nil {
		p.rest = make(map[reconcile.Key]struct{})
	}
	p.rest[k] = struct{}{}
}

// len returns the number of pending keys.
func (p *pendingKeys) len() int { return len(p.asc) + len(p.rest) }

// each calls fn for every pending key, in no particular order.
func (p *pendingKeys) each(fn func(reconcile.Key)) {
	for _, k := range p.asc {
		fn(k)
	}
	for k := range p.rest {
		fn(k)
	}
}

// keepCap is the largest sorted slice reset keeps for reuse (160 KiB): a
// scope that takes a steady stream reuses it, and one burst does not pin
// megabytes in each of many scopes.
const keepCap = 4096

// reset empties p.
func (p *pendingKeys) reset() {
	asc := p.asc[:0]
	if cap(asc) > keepCap {
		asc = nil
	}
	*p = pendingKeys{asc: asc}
}
