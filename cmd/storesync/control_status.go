package main

import (
	"context"
	"encoding/hex"
	"net/http"
	"time"
)

// handleStatus serves GET /v1/status.
func (c *controlServer) handleStatus(w http.ResponseWriter, r *http.Request) {
	out := statusResponse{PeerID: c.node.Host().ID().String(), Addrs: []string{}, Scopes: []scopeStatus{}, Groups: []groupStatus{}}
	for _, a := range c.node.Addrs() {
		out.Addrs = append(out.Addrs, a.String())
	}
	for _, st := range c.node.Status() {
		s := scopeStatus{
			PubsubTopic:  st.Scope.PubsubTopic,
			ContentTopic: st.Scope.ContentTopic,
			Count:        st.Count,
			Root:         hex.EncodeToString(st.Root[:]),
			Newest:       st.Newest,
			Loading:      st.Loading,
		}
		if ls := st.LastSync; !ls.At.IsZero() {
			s.LastSync = &lastSync{Peer: ls.Peer.String(), At: ls.At.UTC(), Received: ls.Received, Sent: ls.Sent}
		}
		out.Scopes = append(out.Scopes, s)
	}
	groups, err := c.node.Groups(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	for _, g := range groups {
		gs := groupStatus{Name: g.Name, Private: g.Private(), LastAnnounced: timeOrNil(g.LastAnnounced), Members: []memberStatus{}}
		for _, sc := range g.Scopes {
			gs.ContentTopics = append(gs.ContentTopics, sc.ContentTopic)
		}
		for _, m := range g.Members {
			gs.Members = append(gs.Members, memberStatus{Peer: m.Peer.String(), LastAnnouncement: timeOrNil(m.LastAnnouncement),
				LastSync: timeOrNil(m.LastSync), LastError: m.LastError, InSync: m.InSync})
		}
		out.Groups = append(out.Groups, gs)
	}
	writeJSON(w, http.StatusOK, out)
}

// timeOrNil returns nil for the zero time, else the time in UTC.
func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// handleGroupSync serves POST /v1/sync-group: the node syncs a joined
// group with a few of its members now.
func (c *controlServer) handleGroupSync(w http.ResponseWriter, r *http.Request) {
	var req groupSyncRequest
	if err := decodeBody(w, r, maxSyncBody, &req); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(c.stopping, cancel)()
	peers, err := c.node.SyncGroup(ctx, req.Group)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	out := groupSyncResponse{Group: req.Group, Peers: []string{}}
	for _, p := range peers {
		out.Peers = append(out.Peers, p.String())
	}
	writeJSON(w, http.StatusOK, out)
}
