package node

import (
	"github.com/storesync/storesync/protocol/waku"
)

// WithWakuMetadata mounts the Waku metadata protocol
// (/vac/waku/metadata/1.0.0) on the node's host, answering that the node
// is in cluster clusterID and serves the shards of that cluster that its
// kept scopes are on: every scope whose pubsub topic is
// /waku/2/rs/<clusterID>/<shard> counts, at the time of each request.
// js-waku asks every peer it connects to and drops those of another
// cluster. Default off.
func WithWakuMetadata(clusterID uint16) Option {
	return func(c *config) error {
		c.metadata, c.clusterID = true, clusterID
		return nil
	}
}

// startMetadata mounts the metadata protocol if asked; Close unmounts it.
func (n *Node) startMetadata(cfg *config) error {
	if !cfg.metadata {
		return nil
	}
	var mopts []waku.MetadataOption
	if cfg.logger != nil {
		mopts = append(mopts, waku.WithMetadataLogger(cfg.logger))
	}
	svc, err := waku.NewMetadataService(n.host, cfg.clusterID, func() []uint16 { return n.shards(cfg.clusterID) }, mopts...)
	if err != nil {
		return err
	}
	n.closers = append(n.closers, svc.Close)
	return nil
}

// shards returns the shards of cluster that the kept scopes are on.
func (n *Node) shards(cluster uint16) []uint16 {
	scopes := n.store.Scopes()
	topics := make([]string, len(scopes))
	for i, sc := range scopes {
		topics[i] = sc.PubsubTopic
	}
	return waku.ClusterShards(cluster, topics...)
}
