package node

import (
	"context"
	"errors"
	"slices"

	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// maxHistoryScopes is the most scopes one Store v3 query reads.
const maxHistoryScopes = 64

var _ protocol.HistoryStore = (*Store)(nil)

// historyHit is a match of a Store v3 query: its scope and key.
type historyHit struct {
	st *scopeState
	k  reconcile.Key
}

// History answers a Store v3 query (protocol.HistoryStore) from the kept
// scopes, in the order Waku stores sort by: timestamp, then hash. A
// content-filtered query reads at most Limit+1 keys of each scope it
// names, then the page's messages one by one; a lookup reads the index
// and the messages it names. Cursors and lookups need the hash index
// (WithHashIndex; ErrNoHashIndex otherwise). A cursor naming no stored
// message is protocol.ErrUnknownCursor; a query with no topics over more
// than 64 kept scopes is protocol.ErrQueryTooBroad.
func (s *Store) History(ctx context.Context, q protocol.HistoryQuery) (protocol.HistoryPage, error) {
	if err := s.enter(); err != nil {
		return protocol.HistoryPage{}, err
	}
	defer s.calls.Done()
	if (q.Cursor != nil || len(q.Hashes) > 0) && !s.cfg.hashIndex {
		return protocol.HistoryPage{}, ErrNoHashIndex
	}
	limit := max(q.Limit, 1)
	var cursor *reconcile.Key
	if q.Cursor != nil {
		_, k, ok, err := s.locate(ctx, q.Cursor)
		if err != nil {
			return protocol.HistoryPage{}, err
		}
		if !ok {
			return protocol.HistoryPage{}, protocol.ErrUnknownCursor
		}
		cursor = &k
	}
	var hits []historyHit
	var err error
	if len(q.Hashes) > 0 {
		hits, err = s.lookupHits(ctx, q.Hashes, cursor, q.Forward)
	} else {
		hits, err = s.filterHits(ctx, q, cursor, limit+1)
	}
	if err != nil {
		return protocol.HistoryPage{}, err
	}
	// In the page's direction: ascending forward, descending backward.
	slices.SortFunc(hits, func(a, b historyHit) int {
		if q.Forward {
			return a.k.Compare(b.k)
		}
		return b.k.Compare(a.k)
	})
	page := protocol.HistoryPage{More: len(hits) > limit}
	hits = hits[:min(len(hits), limit)]
	size := 0
	for _, h := range hits {
		e := protocol.HistoryEntry{Hash: h.k.Hash}
		if q.IncludeData {
			m, err := s.load(ctx, h.st, h.k)
			if err != nil {
				return protocol.HistoryPage{}, err
			}
			if m == nil {
				continue // deleted since its key was read
			}
			if size += m.Size(); size > q.MaxBytes && len(page.Entries) > 0 {
				page.More = true
				break
			}
			e.Message = m
		}
		page.Entries = append(page.Entries, e)
	}
	if !q.Forward {
		slices.Reverse(page.Entries)
	}
	return page, nil
}

// filterHits returns up to n matches of a content-filtered query in each
// scope it names, the first n after the cursor forward, the last n before
// it backward.
func (s *Store) filterHits(ctx context.Context, q protocol.HistoryQuery, cursor *reconcile.Key, n int) ([]historyHit, error) {
	sts, err := s.historyScopes(q)
	if err != nil {
		return nil, err
	}
	lo, hi := reconcile.TimeBound(uint64(q.Start)), reconcile.End
	if q.End > 0 {
		hi = reconcile.TimeBound(uint64(q.End))
	}
	if cursor != nil {
		if q.Forward && lo.Less(*cursor) {
			lo = *cursor // the cursor itself is skipped below
		}
		if !q.Forward && cursor.Less(hi) {
			hi = *cursor
		}
	}
	if !lo.Less(hi) {
		return nil, nil
	}
	var hits []historyHit
	for _, st := range sts {
		got := 0
		take := func(k reconcile.Key, _ []byte) error {
			if cursor != nil && k == *cursor {
				return nil
			}
			hits = append(hits, historyHit{st: st, k: k})
			if got++; got == n {
				return errPageFull
			}
			return nil
		}
		if err := s.readRangeIn(ctx, st, lo, hi, !q.Forward, take); err != nil && !errors.Is(err, errPageFull) {
			return nil, err
		}
	}
	return hits, nil
}

// historyScopes returns the kept scopes a content-filtered query names;
// a topic not kept here names nothing.
func (s *Store) historyScopes(q protocol.HistoryQuery) ([]*scopeState, error) {
	if q.PubsubTopic == "" {
		all := s.Scopes()
		if len(all) > maxHistoryScopes {
			return nil, protocol.ErrQueryTooBroad
		}
		sts := make([]*scopeState, 0, len(all))
		for _, sc := range all {
			if st, ok := s.state(sc); ok {
				sts = append(sts, st)
			}
		}
		return sts, nil
	}
	var sts []*scopeState
	for _, ct := range q.ContentTopics {
		st, ok := s.state(reconcile.Scope{PubsubTopic: q.PubsubTopic, ContentTopic: ct})
		if ok && !slices.Contains(sts, st) {
			sts = append(sts, st)
		}
	}
	return sts, nil
}

// lookupHits returns the stored messages with the given hashes, those
// past the cursor in the query's direction.
func (s *Store) lookupHits(ctx context.Context, hashes []reconcile.Hash, cursor *reconcile.Key, forward bool) ([]historyHit, error) {
	var hits []historyHit
	for i := range hashes {
		st, k, ok, err := s.locate(ctx, &hashes[i])
		if err != nil {
			return nil, err
		}
		if !ok || slices.ContainsFunc(hits, func(h historyHit) bool { return h.k == k }) {
			continue
		}
		if cursor != nil && (forward && !cursor.Less(k) || !forward && !k.Less(*cursor)) {
			continue
		}
		hits = append(hits, historyHit{st: st, k: k})
	}
	return hits, nil
}
