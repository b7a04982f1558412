package node

import (
	"errors"
	"log/slog"
	"time"

	ds "github.com/ipfs/go-datastore"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/storesync/storesync/gossip"

	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// config holds the options of New.
type config struct {
	host           host.Host
	listen         []string
	identity       crypto.PrivKey
	datastore      ds.Batching
	dataDir        string
	scopes         []reconcile.Scope
	peers          []peer.AddrInfo
	retention      time.Duration
	retentionEvery time.Duration
	protocolOpts   []protocol.Option
	storeOpts      []StoreOption
	logger         *slog.Logger
	registerer     prometheus.Registerer
	pubsub         *pubsub.PubSub
	gossipOpts     []gossip.Option
	groups         []gossip.Group
	gossipNet      gossip.Network
	mdnsTag        string
	mplex          bool
	metadata       bool
	clusterID      uint16
	wakuStore      *[]protocol.WakuStoreOption // nil: Store v3 not served
	relay          bool
}

// Option configures New.
type Option func(*config) error

// WithHost mounts the node on an existing libp2p host, which the node
// does not close. Default: the node makes a host of its own (see
// WithListenAddrs and WithIdentity) and closes it on Close.
func WithHost(h host.Host) Option {
	return func(c *config) error {
		if h == nil {
			return errors.New("nil host")
		}
		c.host = h
		return nil
	}
}

// WithListenAddrs sets the addresses of the node's own host, as
// multiaddr strings. Default /ip4/0.0.0.0/tcp/0 (any free port).
func WithListenAddrs(addrs ...string) Option {
	return func(c *config) error {
		c.listen = append(c.listen, addrs...)
		return nil
	}
}

// WithIdentity sets the private key of the node's own host. Default: a
// new key every start (LoadOrCreateIdentity keeps one in a file).
func WithIdentity(k crypto.PrivKey) Option {
	return func(c *config) error {
		c.identity = k
		return nil
	}
}

// WithDatastore keeps the store in d, which the node does not close.
// Default: LevelDB in the data folder (WithDataDir).
func WithDatastore(d ds.Batching) Option {
	return func(c *config) error {
		c.datastore = d
		return nil
	}
}

// WithDataDir keeps the store in a LevelDB in dir/datastore, opened and
// closed by the node.
func WithDataDir(dir string) Option {
	return func(c *config) error {
		c.dataDir = dir
		return nil
	}
}

// WithScopes adds scopes the node keeps; scopes already kept stay kept.
func WithScopes(scopes ...reconcile.Scope) Option {
	return func(c *config) error {
		c.scopes = append(c.scopes, scopes...)
		return nil
	}
}

// WithPeers makes the node connect to these peers and sync every scope
// with each of them once it has started. Default none.
func WithPeers(peers ...peer.AddrInfo) Option {
	return func(c *config) error {
		c.peers = append(c.peers, peers...)
		return nil
	}
}

// WithRetention deletes messages older than d, checked every interval
// (default d/10, at least a second, at most an hour). Default: keep
// everything. Sync windows (protocol.WithWindow) should stay within d, or
// peers pull back what retention removes.
func WithRetention(d, every time.Duration) Option {
	return func(c *config) error {
		if d < 0 || every < 0 {
			return errors.New("negative retention")
		}
		c.retention, c.retentionEvery = d, every
		return nil
	}
}

// WithProtocolOptions passes options to the sync protocol service.
func WithProtocolOptions(opts ...protocol.Option) Option {
	return func(c *config) error {
		c.protocolOpts = append(c.protocolOpts, opts...)
		return nil
	}
}

// WithStoreOptions passes options to the message store.
func WithStoreOptions(opts ...StoreOption) Option {
	return func(c *config) error {
		c.storeOpts = append(c.storeOpts, opts...)
		return nil
	}
}

// WithLogger replaces the node's logger and the protocol's. Default the
// "storesync/node" and "storesync/protocol" subsystem loggers, which
// GOLOG_LOG_LEVEL controls like libp2p's.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithPubSub runs the sync groups over an existing GossipSub instance,
// which must be on the node's host. Default: the node starts GossipSub on
// its host (one GossipSub per host: pass yours if the host has one).
func WithPubSub(ps *pubsub.PubSub) Option {
	return func(c *config) error {
		c.pubsub = ps
		return nil
	}
}

// WithGossipNetwork replaces GossipSub under the sync groups with another
// gossip.Network: the seam where tests drop or delay announcements.
// Default GossipSub (see WithPubSub).
func WithGossipNetwork(net gossip.Network) Option {
	return func(c *config) error {
		c.gossipNet = net
		return nil
	}
}

// WithGroups joins sync groups at start (see Node.Join).
func WithGroups(groups ...gossip.Group) Option {
	return func(c *config) error {
		c.groups = append(c.groups, groups...)
		return nil
	}
}

// WithGossipOptions passes options to the gossip service (interval,
// sessions, triggers).
func WithGossipOptions(opts ...gossip.Option) Option {
	return func(c *config) error {
		c.gossipOpts = append(c.gossipOpts, opts...)
		return nil
	}
}

// WithMDNS finds peers on the local network with mDNS under the given
// service tag and connects to them. Default off.
func WithMDNS(tag string) Option {
	return func(c *config) error {
		c.mdnsTag = tag
		return nil
	}
}

// WithMetrics registers the node's Prometheus metrics (sessions, round
// trips, bytes, messages received, rejected and sent, per scope, and the
// messages stored per scope) with reg. Default: no metrics.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(c *config) error {
		c.registerer = reg
		return nil
	}
}
