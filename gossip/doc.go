// Package gossip is storesync's anti-entropy over GossipSub. A sync group
// (Group) is a name and a set of scopes; a node joins groups (Join) and
// syncs only their scopes, so an application's nodes sync only the
// content topics that application cares about. It never touches storage
// or the wire protocol itself: it reads roots from a Store and runs
// sessions through a Syncer (the protocol service).
//
// Every interval (WithInterval, jittered) each member publishes an
// announcement on the group's topic, TopicPrefix+name: per scope a
// prefix of its root fingerprint, its message count and newest timestamp,
// about 40 bytes a scope. A topic validator checks every announcement
// before GossipSub delivers or forwards it: size, decoding, scopes of the
// group, the allow-list of a private group, and a rate per author.
//
// A member whose root differs from an announcer's pulls: after a random
// delay, so that the members behind do not all ask at once, it opens a
// protocol session for the differing scopes with one of the members whose
// roots differ, chosen at random among those ahead of it. At most
// WithMaxSessions sessions run at once; a peer whose roots a session just
// settled is not asked again until a root changes; failures back off per
// peer, and a peer that does not speak the protocol is left alone for an
// hour. Sessions also start when a node joins (WithStartup), when a scope
// has been idle (WithIdleSync), on demand (SyncGroup), and for messages
// announced by hash (NoteAdded, WithRecent).
//
// The Topic and Network interfaces are the seam to GossipSub
// (PubSubNetwork); tests put lossy or delaying topics there. One
// event-loop goroutine owns all of the service's state.
//
// Constructors: New, PubSubNetwork, NewMetricsTracer.
package gossip
