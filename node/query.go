package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/storesync/storesync/reconcile"
)

const (
	// DefaultQueryLimit is the page size of a Query that sets no Limit.
	DefaultQueryLimit = 100
	// MaxQueryLimit caps Query.Limit, so that one page stays a bounded
	// amount of memory.
	MaxQueryLimit = 10_000
)

// Query selects messages of one scope for Store.Query.
type Query struct {
	Scope reconcile.Scope
	// From and To bound the timestamps, in Unix nanoseconds, to
	// [From, To); To == 0 means no upper limit.
	From, To int64
	// After is the cursor: the page starts after this key (Page.Next of
	// the previous page). The zero Key starts at the beginning.
	After reconcile.Key
	// Limit caps the page: DefaultQueryLimit if not positive, at most
	// MaxQueryLimit.
	Limit int
}

// Page is one page of a Query's results.
type Page struct {
	// Messages are in key order: by timestamp, then by hash.
	Messages []reconcile.Message
	// Next is the cursor for the next page (Query.After), the key of the
	// last message of this page; zero when More is false.
	Next reconcile.Key
	// More reports whether messages follow this page.
	More bool
}

// errPageFull ends the key iteration once a page is full.
var errPageFull = errors.New("page full")

// Query returns the messages of a scope with timestamps in [From, To) in
// key order (time, then hash), at most Limit of them, starting after the
// cursor After. Paging with Page.Next visits keys in strictly increasing
// order, so no message appears twice and every message stored throughout
// the paging appears once; a message added meanwhile appears if its key
// follows the cursor, one deleted meanwhile may be left out.
func (s *Store) Query(ctx context.Context, q Query) (Page, error) {
	if q.From < 0 || q.To < 0 {
		return Page{}, fmt.Errorf("%w: negative time bound", ErrBadQuery)
	}
	st, err := s.enterScope(q.Scope)
	if err != nil {
		return Page{}, err
	}
	defer s.calls.Done()

	limit := q.Limit
	if limit <= 0 {
		limit = DefaultQueryLimit
	}
	limit = min(limit, MaxQueryLimit)
	lo, hi := reconcile.TimeBound(uint64(q.From)), reconcile.End
	if q.To != 0 {
		hi = reconcile.TimeBound(uint64(q.To))
	}
	cursor := q.After != (reconcile.Key{}) && !q.After.Less(lo)
	if cursor {
		lo = q.After
	}

	var p Page
	var last reconcile.Key
	err = s.readRange(ctx, st, lo, hi, func(k reconcile.Key, raw []byte) error {
		if cursor && k == q.After {
			return nil // the cursor itself belongs to the previous page
		}
		if len(p.Messages) == limit {
			p.More = true
			return errPageFull
		}
		m, err := decodeStored(st, k, raw)
		if err != nil {
			return err
		}
		p.Messages = append(p.Messages, *m)
		last = k
		return nil
	})
	if err != nil && !errors.Is(err, errPageFull) {
		return Page{}, fmt.Errorf("query scope %s: %w", q.Scope, err)
	}
	if p.More {
		p.Next = last
	}
	return p, nil
}
