// Package protocol is the storesync libp2p stream protocol: it mounts on
// any host (New registers the handlers, Close removes them) and syncs the
// scopes of a Store with peers. It never touches GossipSub; anti-entropy
// scheduling lives in package gossip.
//
// # Sessions
//
// Sync opens one stream (SyncID) to a peer for any number of scopes. The
// request carries, per scope, its 8-byte ID and the first reconciliation
// frame (the fingerprint, count and newest timestamp of the session's
// window); the server answers turn by turn with reconcile.Responder,
// keeping no state between turns, until the client finishes. An in-sync
// scope costs one round trip and a few dozen bytes each way. The client
// then fetches what it lacks (FetchID), in batches of at most 1024 hashes
// and a byte limit, zstd-compressed where that pays, and every message is
// verified before it is stored: its hash is recomputed from its content
// and must be one that was asked for, its scope must be the one asked
// for, it must be a valid message and pass the application's Validator.
// Bad messages are dropped and counted against the peer (Strikes); a peer
// with too many is refused for a while. The good ones of the same batch
// are kept.
//
// Sync is pulled, never pushed: what the client holds and the server
// lacks is offered through the reconciliation itself, and the server
// decides whether to pull it (WithPullOffered) before it reports how many
// it took, which Sync returns as Sent.
//
// # Errors and limits
//
// Errors travel as codes (pb.Code) and arrive as a *RemoteError that
// matches the sentinels of this package with errors.Is:
// ErrUnsupportedScope, ErrTooLarge, ErrTooManySessions, ErrBusy,
// ErrBadRequest, ErrTimeout, ErrRefused. A peer that does not speak the
// protocol fails at negotiation with ErrProtocolNotSupported, and nothing
// else happens. Every read has a size cap and every read and write a
// deadline within the session's; sessions and fetch streams are limited
// per peer and in total; streams run in the resource manager's
// ServiceName scope with their buffers reserved, and the frames of a
// peer's turn are reserved there as they arrive, so that the resource
// manager bounds what a peer can make us hold. A peer that breaks the
// protocol gets the error code, a warning in the log and a reset stream.
//
// Logging goes through the "storesync/protocol" subsystem logger
// (GOLOG_LOG_LEVEL) unless WithLogger gives another; metrics go to a
// MetricsTracer (NewMetricsTracer for Prometheus).
package protocol
