package gossip

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/reconcile"
)

// FuzzDecodeAnnouncement decodes arbitrary bytes as an announcement of a
// group: any input gives a checked announcement or an error, never a
// panic, and a decoded one re-encodes to the same states.
func FuzzDecodeAnnouncement(f *testing.F) {
	a := reconcile.Scope{PubsubTopic: "p", ContentTopic: "a"}
	b := reconcile.Scope{PubsubTopic: "p", ContentTopic: "b"}
	g := define(Group{Name: "g", Scopes: []reconcile.Scope{a, b}})
	ok, _ := encodeAnnouncement(&g, map[reconcile.Scope]ScopeState{a: {Count: 3, Newest: 9e9}, b: {}},
		map[reconcile.Scope][]reconcile.Key{a: {{TS: 5, Hash: reconcile.Hash{1}}, {TS: 7, Hash: reconcile.Hash{2}}}})
	f.Add(ok)
	f.Fuzz(func(t *testing.T, data []byte) {
		ann, err := decodeAnnouncement(data, &g, 64<<10)
		if err != nil {
			return
		}
		var states map[reconcile.Scope]ScopeState
		if ann.states != nil {
			states = map[reconcile.Scope]ScopeState{}
			for sc, st := range ann.states {
				var root reconcile.Fingerprint
				copy(root[:], st.root[:])
				states[sc] = ScopeState{Root: root, Count: st.count, Newest: int64(st.newest) * 1e9}
			}
		}
		again, err := encodeAnnouncement(&g, states, ann.recent)
		require.NoError(t, err)
		back, err := decodeAnnouncement(again, &g, 1<<30)
		require.NoError(t, err)
		for sc, st := range ann.states {
			if st.newest < 1<<32 {
				require.Equal(t, st, back.states[sc])
			}
		}
		require.Equal(t, len(ann.recent), len(back.recent))
	})
}
