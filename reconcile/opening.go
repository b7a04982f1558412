package reconcile

import "github.com/storesync/storesync/pb"

// OpeningRange returns the key range [lo, hi) of a session's first
// message (Session.Start): the range the session reconciles. A server can
// then tell the client how many messages it holds there before the
// reconciliation runs, so that a client far behind streams the range
// instead.
func OpeningRange(first *pb.ReconcileFrame) (lo, hi Key, err error) {
	lim := Limits{MaxItems: 1, MaxCells: 1, MaxIDs: 1}
	m, err := decode([]*pb.ReconcileFrame{first}, &lim)
	if err != nil {
		return Key{}, Key{}, err
	}
	if len(m.items) != 1 || m.items[0].mode != pb.Mode_FINGERPRINT {
		return Key{}, Key{}, badFrame("an opening is one fingerprint")
	}
	return m.items[0].lo, m.items[0].hi, nil
}
