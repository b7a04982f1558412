package main

import (
	"encoding/hex"
	"net/http"
)

// handleStatus serves GET /v1/status.
func (c *controlServer) handleStatus(w http.ResponseWriter, _ *http.Request) {
	out := statusResponse{PeerID: c.node.Host().ID().String(), Addrs: []string{}, Scopes: []scopeStatus{}}
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
		}
		if ls := st.LastSync; !ls.At.IsZero() {
			s.LastSync = &lastSync{Peer: ls.Peer.String(), At: ls.At.UTC(), Received: ls.Received, Sent: ls.Sent}
		}
		out.Scopes = append(out.Scopes, s)
	}
	writeJSON(w, http.StatusOK, out)
}
