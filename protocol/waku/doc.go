// Package waku is storesync's edge towards Waku networks: the pieces a
// node needs so that Waku clients (js-waku with its defaults among them)
// can find it, connect to it and agree on where messages live.
//
// It owns autosharding (RFC 51, 51/WAKU2-RELAY-SHARDING): content topics
// are parsed and checked by ParseContentTopic, mapped to a shard by
// ShardIndex, and shards are named by the relay pubsub topics
// /waku/2/rs/<cluster>/<shard> (RelayShard, ParsePubsubTopic). It owns the
// metadata protocol (/vac/waku/metadata/1.0.0), in which two nodes tell
// each other their cluster and shards: NewMetadataService mounts the
// answering side on a host and Close removes it; QueryMetadata asks a
// peer.
//
// It never stores messages and never touches GossipSub: the node package
// decides which shards it serves, from the scopes it keeps. Nothing here
// panics on remote bytes or on a caller's bad input; both come back as
// errors (ErrInvalidContentTopic, ErrInvalidPubsubTopic,
// ErrInvalidMetadata).
package waku
