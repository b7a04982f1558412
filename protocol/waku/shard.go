package waku

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxShards is the number of shards a cluster has at most: static
// sharding (RFC 51) numbers them 0 to 1023.
const MaxShards = 1024

// DefaultShards is the number of shards autosharding spreads content
// topics over unless told otherwise: the eight of The Waku Network
// (cluster 1), which js-waku assumes by default.
const DefaultShards = 8

// relayPrefix starts the name of every relay shard's pubsub topic.
const relayPrefix = "/waku/2/rs/"

// ErrInvalidPubsubTopic is the error, wrapped with the reason, of a
// pubsub topic that is not /waku/2/rs/<cluster>/<shard>.
var ErrInvalidPubsubTopic = errors.New("waku: invalid pubsub topic")

// ShardIndex returns the shard that autosharding (RFC 51) puts a content
// topic on, in a cluster of numShards shards: the last 8 bytes, read
// big-endian, of SHA-256 over the topic's application and version,
// modulo numShards. Topics that share application and version share a
// shard. A bad topic gives an error wrapping ErrInvalidContentTopic;
// numShards must be 1 to MaxShards.
func ShardIndex(contentTopic string, numShards int) (uint16, error) {
	c, err := ParseContentTopic(contentTopic)
	if err != nil {
		return 0, err
	}
	return c.Shard(numShards)
}

// Shard returns the topic's shard as ShardIndex does.
func (c ContentTopic) Shard(numShards int) (uint16, error) {
	if numShards < 1 || numShards > MaxShards {
		return 0, fmt.Errorf("waku: %d shards, want 1 to %d", numShards, MaxShards)
	}
	d := sha256.Sum256([]byte(c.Application + c.Version))
	v := binary.BigEndian.Uint64(d[len(d)-8:])
	return uint16(v % uint64(numShards)), nil
}

// RelayShard names one shard of one cluster, the unit that relay
// pubsub topics stand for.
type RelayShard struct {
	Cluster uint16
	Shard   uint16
}

// AutoShard returns the relay shard of a content topic in a cluster of
// numShards shards, as ShardIndex computes it.
func AutoShard(contentTopic string, cluster uint16, numShards int) (RelayShard, error) {
	s, err := ShardIndex(contentTopic, numShards)
	if err != nil {
		return RelayShard{}, err
	}
	return RelayShard{Cluster: cluster, Shard: s}, nil
}

// PubsubTopic returns the shard's relay pubsub topic,
// /waku/2/rs/<cluster>/<shard>.
func (r RelayShard) PubsubTopic() string {
	return relayPrefix + strconv.Itoa(int(r.Cluster)) + "/" + strconv.Itoa(int(r.Shard))
}

// String returns PubsubTopic.
func (r RelayShard) String() string { return r.PubsubTopic() }

// ParsePubsubTopic parses a relay pubsub topic /waku/2/rs/<cluster>/<shard>:
// both numbers decimal without sign or leading zeros, the cluster at most
// 65535, the shard below MaxShards. Anything else gives an error wrapping
// ErrInvalidPubsubTopic.
func ParsePubsubTopic(s string) (RelayShard, error) {
	rest, ok := strings.CutPrefix(s, relayPrefix)
	if !ok {
		return RelayShard{}, invalidPubsubTopic(s, "not a relay shard topic "+relayPrefix+"<cluster>/<shard>")
	}
	cs, ss, ok := strings.Cut(rest, "/")
	if !ok {
		return RelayShard{}, invalidPubsubTopic(s, "no shard")
	}
	cluster, err := parseIndex(cs, 1<<16-1)
	if err != nil {
		return RelayShard{}, invalidPubsubTopic(s, "cluster: "+err.Error())
	}
	shard, err := parseIndex(ss, MaxShards-1)
	if err != nil {
		return RelayShard{}, invalidPubsubTopic(s, "shard: "+err.Error())
	}
	return RelayShard{Cluster: cluster, Shard: shard}, nil
}

// parseIndex reads a decimal number from 0 to max in its one spelling.
func parseIndex(s string, max uint64) (uint16, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%q is not a decimal number", s)
	}
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil || v > max {
		return 0, fmt.Errorf("%s is over %d", s, max)
	}
	return uint16(v), nil
}

func invalidPubsubTopic(s, why string) error {
	return fmt.Errorf("%w %q: %s", ErrInvalidPubsubTopic, s, why)
}

// ClusterShards returns the shards of cluster that the given pubsub
// topics name, sorted and each once. Topics of other clusters and topics
// that are not relay shard topics are skipped.
func ClusterShards(cluster uint16, pubsubTopics ...string) []uint16 {
	var out []uint16
	for _, t := range pubsubTopics {
		r, err := ParsePubsubTopic(t)
		if err == nil && r.Cluster == cluster {
			out = append(out, r.Shard)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
