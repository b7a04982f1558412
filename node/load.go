package node

import (
	"context"
	"errors"
	"fmt"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"

	"github.com/storesync/storesync/reconcile"
)

// loadScopes opens every scope recorded in d and proves each tree against
// its record.
func loadScopes(ctx context.Context, d ds.Batching, cfg storeConfig) ([]*scopeState, error) {
	recs, err := listScopeRecords(ctx, d)
	if err != nil {
		return nil, err
	}
	out := make([]*scopeState, 0, len(recs))
	for _, rec := range recs {
		st, err := openScope(ctx, d, rec, cfg)
		if err != nil {
			return nil, fmt.Errorf("scope %s: %w", rec.scope, err)
		}
		if err := prove(ctx, d, st, rec.agg, false); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// listScopeRecords returns the scope records of d. A node keeps few
// scopes, so their records fit in memory at once.
func listScopeRecords(ctx context.Context, d ds.Read) ([]scopeRecord, error) {
	res, err := d.Query(ctx, dsq.Query{Prefix: scopesKey.String()})
	if err != nil {
		return nil, fmt.Errorf("list scopes: %w", err)
	}
	entries, err := res.Rest()
	if err != nil {
		return nil, fmt.Errorf("list scopes: %w", err)
	}
	out := make([]scopeRecord, 0, len(entries))
	for _, e := range entries {
		rec, err := parseRecordEntry(e)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// parseRecordEntry decodes a scope record and checks that it is stored
// under its own scope's ID.
func parseRecordEntry(e dsq.Entry) (scopeRecord, error) {
	k := ds.RawKey(e.Key)
	rec, err := decodeScopeRecord(e.Value)
	if err != nil {
		return rec, fmt.Errorf("%w: %s: %w", ErrCorrupt, k, err)
	}
	if !k.Parent().Equal(scopesKey) || k.BaseNamespace() != scopeIDHex(rec.scope.ID()) {
		return rec, fmt.Errorf("%w: %s holds the record of scope %s", ErrCorrupt, k, rec.scope)
	}
	return rec, nil
}

// prove checks that a scope's tree holds exactly the count and sum its
// record says. The root aggregate is O(1); a deep proof also verifies
// every tree invariant and sums the stored messages' hashes, in O(N).
func prove(ctx context.Context, d ds.Datastore, st *scopeState, want reconcile.Aggregate, deep bool) error {
	if got := st.tree.Root(); got != want {
		return fmt.Errorf("%w: scope %s: tree root holds %d messages, record says %d (or the sums differ)",
			ErrCorrupt, st.scope, got.Count, want.Count)
	}
	if !deep {
		return nil
	}
	got, err := st.tree.Verify(ctx)
	switch {
	case errors.Is(err, reconcile.ErrCorrupt):
		return fmt.Errorf("%w: scope %s: %w", ErrCorrupt, st.scope, err)
	case err != nil:
		return fmt.Errorf("scope %s: %w", st.scope, err)
	}
	if got != want {
		return fmt.Errorf("%w: scope %s: tree holds %d messages, record says %d (or the sums differ)",
			ErrCorrupt, st.scope, got.Count, want.Count)
	}
	got, err = sumStoredMessages(ctx, d, st)
	if err != nil {
		return fmt.Errorf("scope %s: %w", st.scope, err)
	}
	if got != want {
		return fmt.Errorf("%w: scope %s: %d messages stored, record says %d (or the sums differ)",
			ErrCorrupt, st.scope, got.Count, want.Count)
	}
	return nil
}

// sumStoredMessages returns the count and sum of the messages stored for
// a scope, read from their record keys alone.
func sumStoredMessages(ctx context.Context, d ds.Datastore, st *scopeState) (reconcile.Aggregate, error) {
	var agg reconcile.Aggregate
	err := eachStoredKey(ctx, d, st, func(k reconcile.Key) error {
		agg = agg.AddHash(&k.Hash)
		return nil
	})
	return agg, err
}
