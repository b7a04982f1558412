// Package reconcile keeps the messages of one scope in a persistent prolly
// tree and computes the set difference between two such trees. It has no
// network code and no goroutines of its own: a session is a state machine
// fed with messages (pb.ReconcileFrame), so two trees can reconcile
// in-process (Reconcile) or over any transport.
//
// # Messages, keys and scopes
//
// A Message hashes as RFC 14/WAKU2-MESSAGE specifies (MessageHash), so its
// hash agrees with every Waku node. A Key is the message's timestamp
// followed by its hash; keys sort by time, so a time window is a key range
// and recent messages sit at the right edge. A Scope is a (pubsub topic,
// content topic) pair; each scope has its own tree.
//
// # The tree
//
// Open returns a Tree stored under a key prefix of any go-datastore.
// Node boundaries are content-defined: a key closes its node at every
// height below its level, which counts leading zero base-32 digits of the
// key's hash, so the same set of keys gives the same nodes and root
// whatever order it was built in (history independence). Hashes are their
// authors' choice, so a node also closes at 4,096 entries counted from
// the previous close: chunking is greedy from the left, hence still a
// function of the sorted set, and no run of keys ground to avoid
// boundaries makes a node larger than readers accept. Ordinary keys meet
// that bound with probability about e^-130 a run; an insert into a ground
// run rewrites the run's nodes after it up to its end. Every internal
// entry carries its child's last key, count and sum (the hashes added as
// 256-bit integers), so Aggregate gives the count and fingerprint of any
// range from O(log N) nodes. Updates go through a Txn that writes into the
// caller's batch, so that a message and its tree entries commit together;
// Verify proves at start-up that the stored tree is sound and returns its
// aggregate for comparison with the message store's own count and sum.
// Upper levels stay in a bounded cache; the tree never needs the whole
// scope in memory.
//
// # Reconciliation
//
// A Session (initiator) and a Responder exchange range items. The
// responder keeps no state between messages: every item names its key
// range by bounds, never a node, and is answered from the tree as it is
// now, so no snapshot is needed and a concurrent write shows up at worst
// as a spurious difference. A session starts with the fingerprint, count
// and newest timestamp of the whole range; equal fingerprints end it in
// one round trip. Otherwise, per range:
//
//   - the prefix probe: when one side's keys are exactly the other's up to
//     its newest timestamp (a node that was offline), the other sends the
//     newer hashes at once;
//   - a side holding few keys in the range lists them (KEYLIST);
//   - a difference that is dense, or too large for one sketch, splits the
//     range along the tree's node boundaries, every part of one level in
//     one message, and each differing part is handled again;
//   - otherwise the responder sends a rateless IBLT sketch over the short
//     IDs of its keys (the timestamp down to a 17 ms window and 3 bytes of
//     the hash, so that the holder of an ID finds its key by reading that
//     window), sized for the expected difference, and the initiator peels
//     it, asks for more cells if it must, gives the responder the hashes
//     it lacks and asks for the full hashes of what it lacks (WANT). The
//     result is checked against the responder's fingerprint; a failed
//     check falls back to splitting. A large range whose difference needs
//     more cells than a Tree keeps per subtree is sketched in parts cut
//     along the tree, each sized for its share. A group of keys that
//     share every cell the sketch has (twins, which an author can grind)
//     is named by the cells it is left in: the responder lists its keys
//     of the range that fit them (MATCH), unless the session was told it
//     may not (Session.WithoutMatch, for peers of sync 3.0).
//
// A Tree keeps the first cells of every subtree's sketch in memory
// (carried along by every write), so that a range's sketch is the sum of
// a few subtrees' and a session costs O(d · log N) node reads on each
// side for d differences among N keys, not a read of the range
// (Tree.WarmSketches fills them at once; Tree.CacheStats tells their
// size).
//
// Both sides learn both directions of the difference: Session.Result for
// the initiator, the Diffs returned by Responder.Respond for the
// responder. Every frame stays under Params.FrameSize, every received
// message within Params.Limits, and every reply within the receiver's
// limits.
//
// # No ceiling
//
// No scope size makes a session fail. Each reply is built against a
// budget in the units the receiver's decoder counts; a range whose answer
// would not fit is resolved as far as it fits and the rest handed back as
// a FINGERPRINT item that the peer answers in the next round, and one
// item of a few bytes buys at most half a frame of hashes. A session that
// would pass Params.MaxMessages, or has learned Params.MaxDiff hashes,
// ends incomplete instead of failing: its last message still delivers
// what it must, Session.Result holds what was learned (true, if not
// whole), and Session.Complete and Session.Unresolved tell the caller to
// transfer that and start another session. In its closing rounds a
// session cuts differing ranges into parts small enough to list and lists
// them, so that every session learns part of the difference and repeated
// sessions converge. Nothing of this is new on the wire.
package reconcile
