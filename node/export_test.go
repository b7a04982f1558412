package node

import "github.com/storesync/storesync/reconcile"

// EncodeScopeRecord and DecodeScopeRecord give the external tests the
// scope record codec, which is internal.
func EncodeScopeRecord(sc reconcile.Scope, agg reconcile.Aggregate) []byte {
	return (&scopeRecord{scope: sc, agg: agg}).encode()
}

func DecodeScopeRecord(b []byte) (reconcile.Scope, reconcile.Aggregate, error) {
	r, err := decodeScopeRecord(b)
	return r.scope, r.agg, err
}
