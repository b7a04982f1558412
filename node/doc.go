// Package node assembles a store node. So far it holds the node's message
// store: Store keeps the messages of the scopes a node keeps, each scope
// with its prolly tree (reconcile.Tree), in one go-datastore. It never
// speaks the wire; the protocol and gossip layers reach the store through
// its methods.
//
// Constructors: OpenStore opens a Store over a ds.Batching the caller
// owns; OpenLevelDB opens the default datastore on disk.
//
// # Consistency
//
// A message, its tree entry and its scope's count and sum commit in one
// datastore batch, so a crash never leaves the tree disagreeing with the
// messages. OpenStore proves it: each tree's root aggregate must equal the
// count and sum recorded for its scope (and, with WithVerifyOnOpen, every
// tree invariant and every stored message must agree too). A disagreement
// is reported as ErrCorrupt and never repaired silently.
//
// # Datastore layout
//
// Everything the store writes lives under /storesync:
//
//	/storesync/scope/<scope ID hex>           the scope record: format byte,
//	                                          pubsub and content topic
//	                                          (uvarint length, bytes), count
//	                                          (8 bytes big-endian), sum (32
//	                                          bytes, reconcile.Sum.Bytes)
//	/storesync/msg/<scope ID hex>/<hash hex>  a message: pb.Message bytes
//	/storesync/tree/<scope ID hex>/...        the scope's tree (reconcile.Open)
//
// The scope ID is reconcile.Scope.ID, the hash the Waku deterministic
// message hash, both in lower-case hex.
package node
