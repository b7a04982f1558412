package main

import "time"

// The JSON bodies of the control API (see controlServer). The server and
// the client commands share them, so the two cannot drift apart.

// apiVersion prefixes every path of the control API; a change that breaks
// clients gets a new prefix.
const apiVersion = "/v1"

// errorBody is the body of every failed request.
type errorBody struct {
	Error string `json:"error"`
}

type putRequest struct {
	// PubsubTopic of the scope, "" for the node's own (run
	// --pubsub-topic). Omitted when empty, so that a request that does not
	// name one is the same as before the field existed.
	PubsubTopic  string   `json:"pubsub_topic,omitempty"`
	ContentTopic string   `json:"content_topic"`
	Payloads     []string `json:"payloads"`
	// Timestamp of the first payload in Unix nanoseconds, 0 for now; the
	// others follow one nanosecond apart.
	Timestamp int64 `json:"timestamp"`
}

type putResponse struct {
	Added      []putAdded    `json:"added"`
	Duplicates int           `json:"duplicates"`
	Rejected   []putRejected `json:"rejected"`
}

type putAdded struct {
	Hash      string `json:"hash"`
	Timestamp int64  `json:"timestamp"`
}

type putRejected struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

type queryResponse struct {
	Messages []queryMessage `json:"messages"`
	// Next is the cursor of the next page, "" when More is false.
	Next string `json:"next"`
	More bool   `json:"more"`
}

type queryMessage struct {
	Hash      string `json:"hash"`
	Timestamp int64  `json:"timestamp"`
	// Payload is the payload as a JSON string: exact for UTF-8 text, with
	// invalid bytes replaced otherwise. PayloadHex is always exact.
	Payload    string `json:"payload"`
	PayloadHex string `json:"payload_hex"`
}

type statusResponse struct {
	PeerID string        `json:"peer_id"`
	Addrs  []string      `json:"addrs"`
	Scopes []scopeStatus `json:"scopes"`
	Groups []groupStatus `json:"groups"`
}

// groupStatus is a joined sync group: its members, when each last
// announced and when we last synced with each.
type groupStatus struct {
	Name          string         `json:"name"`
	Private       bool           `json:"private"`
	ContentTopics []string       `json:"content_topics"`
	LastAnnounced *time.Time     `json:"last_announced"`
	Members       []memberStatus `json:"members"`
}

type memberStatus struct {
	Peer             string     `json:"peer"`
	LastAnnouncement *time.Time `json:"last_announcement"`
	LastSync         *time.Time `json:"last_sync"`
	LastError        string     `json:"last_error,omitempty"`
	InSync           bool       `json:"in_sync"`
}

// groupSyncRequest asks the node to sync a group with a few members now.
type groupSyncRequest struct {
	Group string `json:"group"`
}

// groupSyncResponse names the members synced with.
type groupSyncResponse struct {
	Group string   `json:"group"`
	Peers []string `json:"peers"`
}

type scopeStatus struct {
	PubsubTopic  string `json:"pubsub_topic"`
	ContentTopic string `json:"content_topic"`
	Count        uint64 `json:"count"`
	// Root is the hex of the scope's 16-byte fingerprint.
	Root string `json:"root"`
	// Newest is the newest timestamp stored, 0 when the scope is empty.
	Newest int64 `json:"newest"`
	// Loading is how many messages a catch-up or an import into the
	// scope while it was empty has stored and count leaves out until it
	// ends (node.ScopeStats.Loading).
	Loading  uint64    `json:"loading,omitempty"`
	LastSync *lastSync `json:"last_sync"`
}

type lastSync struct {
	Peer     string    `json:"peer"`
	At       time.Time `json:"at"`
	Received int       `json:"received"`
	Sent     int       `json:"sent"`
}

type syncRequest struct {
	// Peer is a full multiaddr (ending in /p2p/ID) or the ID of a peer
	// the node already knows.
	Peer string `json:"peer"`
	// PubsubTopic of the ContentTopics, "" for the node's own. With no
	// ContentTopics it selects every kept scope under it.
	PubsubTopic string `json:"pubsub_topic,omitempty"`
	// ContentTopics to sync; none means every kept scope under
	// PubsubTopic, or every kept scope at all if PubsubTopic is "".
	ContentTopics []string `json:"content_topics,omitempty"`
}

// syncLine is one line of the sync stream: exactly one field is set.
type syncLine struct {
	Progress *syncProgress `json:"progress,omitempty"`
	Report   *syncReport   `json:"report,omitempty"`
	Error    string        `json:"error,omitempty"`
}

type syncProgress struct {
	Kind         string `json:"kind"`
	PubsubTopic  string `json:"pubsub_topic"`
	ContentTopic string `json:"content_topic"`
	Done         int    `json:"done"`
	Total        int    `json:"total"`
	Bytes        int64  `json:"bytes"`
}

type syncReport struct {
	Peer       string            `json:"peer"`
	DurationMS float64           `json:"duration_ms"`
	Scopes     []syncScopeReport `json:"scopes"`
}

type syncScopeReport struct {
	PubsubTopic  string  `json:"pubsub_topic"`
	ContentTopic string  `json:"content_topic"`
	Need         int     `json:"need"`
	Have         int     `json:"have"`
	Received     int     `json:"received"`
	Rejected     int     `json:"rejected"`
	Sent         int     `json:"sent"`
	Streamed     int     `json:"streamed"`
	Bytes        int64   `json:"bytes"`
	RoundTrips   int     `json:"round_trips"`
	DurationMS   float64 `json:"duration_ms"`
	Error        string  `json:"error,omitempty"`
}

// millis expresses d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
