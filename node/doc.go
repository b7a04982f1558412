// Package node assembles a ready store node: a libp2p host (its own, or
// the caller's), a message store in a go-datastore (LevelDB in a folder by
// default, or the caller's ds.Batching), the sync protocol mounted on the
// host, and sync groups over GossipSub. It never speaks the wire itself.
//
// Constructors: New starts a Node (see its options: WithHost,
// WithDatastore, WithDataDir, WithScopes, WithGroups, WithPeers,
// WithRetention, WithMetrics, WithLogger, ...; and for Waku clients
// WithRelay, WithWakuStore, WithMplex and WithWakuMetadata); OpenStore
// opens the message store alone over a ds.Batching the caller owns;
// OpenLevelDB opens the default datastore on disk; LoadOrCreateIdentity
// keeps a node's key in a file.
//
// The node's API is small: Put, Query (a scope and a time range, paged),
// Subscribe (every new message, whatever its source), SyncNow (one peer),
// Status (per scope: count, root, newest, last sync), and Join, Leave,
// SyncGroup and Groups for sync groups. Logs go to the "storesync/node"
// subsystem logger (GOLOG_LOG_LEVEL) unless WithLogger gives another.
//
// # Consistency
//
// A message, its tree entry and its scope's count and sum commit in one
// datastore batch, so a crash never leaves the tree disagreeing with the
// messages. All writes take one path (Store.commit): a Put of messages of
// many scopes commits them together, and the tree decides which messages
// are new, so storing costs no read per message. Messages are kept and
// found by key (timestamp, then hash): a batch writes one sequential run
// of records, and peers ask for messages by key. Waku clients name
// messages by hash alone: a store opened WithHashIndex also writes a small
// index record per message, from hash to scope and timestamp
// (Store.Locate). OpenStore proves the result: each tree's root aggregate must
// equal the count and sum recorded for its scope (and, with
// WithVerifyOnOpen, every tree invariant and every stored message must
// agree too). A disagreement is reported as ErrCorrupt and never repaired
// silently.
//
// A datastore batch must apply atomically: go-datastore does not promise
// it, but LevelDB's batches (OpenLevelDB) are atomic, and so must be the
// Batching a caller passes to WithDatastore. The one exception is
// OpenLevelDB's own folder of two LevelDBs (splitStore in
// leveldb_split.go), whose batches commit in an order the journal
// covers.
//
// # Datastore layout (format 2)
//
// Everything the store writes lives under /storesync:
//
//	/storesync/format                         "2"
//	/storesync/scope/<scope ID hex>           the scope record: format byte,
//	                                          pubsub and content topic
//	                                          (uvarint length, bytes), count
//	                                          (8 bytes big-endian), sum (32
//	                                          bytes, reconcile.Sum.Bytes)
//	/storesync/m/<scope ID hex>/<key b64>     a message: pb.Message bytes
//	/storesync/tree/<scope ID hex>/...        the scope's tree (reconcile.Open)
//	/storesync/pending/<seq, 16 hex digits>   a journal record: per scope,
//	                                          the range of keys a commit
//	                                          stored that no flush has put
//	                                          in the tree yet; see journal.go
//	/storesync/resume/catchup/<scope ID hex>/<hi>
//	                                          a catch-up in progress: the
//	                                          cursor of one range, whose
//	                                          end is hi (hex); see cursor.go
//	/storesync/resume/bulk/<scope ID hex>     a bulk load in progress, an
//	                                          import (snapshot_bulk.go) or a
//	                                          catch-up (catchup_load.go):
//	                                          the scope and, for a
//	                                          catch-up, its range and the
//	                                          least key committed meanwhile
//	                                          (bulkRecord); OpenStore keeps
//	                                          the scope with what was stored
//	/storesync/resume/import/<scope ID hex>   an unfinished import of a
//	                                          snapshot into the scope: the
//	                                          snapshot.State after the last
//	                                          batch stored (MarshalBinary,
//	                                          161 bytes), written in that
//	                                          batch's commit (Store.Import)
//	/storesync/x/<hash[:16] b64>              the hash index, kept while the
//	                                          store is opened WithHashIndex:
//	                                          the scope ID (8 bytes) and
//	                                          timestamp (8 bytes big-endian)
//	                                          of the message with this hash,
//	                                          written and deleted with it
//	                                          (Store.Locate)
//	/storesync/synced                         rewritten, with fsync, by
//	                                          OpenLevelDB's Sync
//	/storesync/xon                            "1" while the hash index is
//	                                          whole
//
// A data folder OpenLevelDB creates keeps the message records, the hash
// index and /storesync/xon in one LevelDB (messages/) and the rest in
// another (meta/), so that a run of new messages fills tables that hold
// nothing else; /storesync/synced is then in meta/ alone, the messages'
// LevelDB being synced by its log files. In a folder of one LevelDB,
// every record but the format record sorts after the messages, so that no
// LevelDB table holds keys on both sides of a run of new messages: one
// that did would overlap every later table of the run, which LevelDB
// would then compact instead of moving it down its levels untouched. The
// format record is written once, when the store is new, into a table of
// its own, and a bulk load first writes out the records after the
// messages that LevelDB holds in memory (settle in leveldb.go). Older
// stores may hold a bulk record at /storesync/bulk/<scope ID hex>, which
// OpenStore finishes too, and a dead /storesync/fsync record.
//
// The scope ID is reconcile.Scope.ID in lower-case hex. The key is
// reconcile.Key.Bytes (timestamp, then the Waku deterministic message
// hash) in "b64": unpadded base64 with the alphabet -0-9A-Z_a-z, which is
// in ASCII order, so that names sort like the bytes they encode. Message
// records sort like keys, so a scope's messages read in key order
// sequentially (a Query, a catch-up stream, an export). Format 1 kept
// messages under /storesync/msg/<scope ID hex>/<hash hex>; OpenStore
// upgrades such a store in place.
package node
