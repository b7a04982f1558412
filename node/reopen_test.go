package node_test

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"testing"

	ds "github.com/ipfs/go-datastore"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// recordKey is where the package doc says a scope's record lives.
func recordKey(sc reconcile.Scope) ds.Key {
	id := sc.ID()
	return ds.NewKey("/storesync/scope/" + hex.EncodeToString(id[:]))
}

// sortedB64 is the record name encoding the package doc describes.
var sortedB64 = base64.NewEncoding("-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz").
	WithPadding(base64.NoPadding)

// msgRecordKey is where the package doc says a message's record lives.
func msgRecordKey(m reconcile.Message) ds.Key {
	id := m.Scope().ID()
	k := m.Key()
	return ds.NewKey("/storesync/m/" + hex.EncodeToString(id[:]) + "/" + sortedB64.EncodeToString(k.Bytes()))
}

// fillLevel writes a LevelDB store in dir with messages in two scopes and
// returns the messages and the stats it had when closed.
func fillLevel(t *testing.T, dir string) ([]reconcile.Message, map[reconcile.Scope]node.ScopeStats) {
	t.Helper()
	d := openLevel(t, dir)
	s, err := node.OpenStore(t.Context(), d)
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(11, 12))
	var all []reconcile.Message
	for _, sc := range []reconcile.Scope{scopeA, scopeB} {
		require.NoError(t, s.AddScope(t.Context(), sc))
		msgs := randMsgs(r, sc, 2500, 1e12)
		_, err := s.Put(t.Context(), msgs...)
		require.NoError(t, err)
		all = append(all, msgs...)
	}
	_, err = s.DeleteBefore(t.Context(), scopeA, 1e11)
	require.NoError(t, err)
	stats := map[reconcile.Scope]node.ScopeStats{}
	for _, sc := range s.Scopes() {
		stats[sc], _ = s.Stats(sc)
	}
	require.NoError(t, s.Close())
	require.NoError(t, d.Close())
	return all, stats
}

func TestReopenLevelDB(t *testing.T) {
	dir := t.TempDir()
	msgs, stats := fillLevel(t, dir)

	for i, verify := range []bool{false, true, false} {
		d := openLevel(t, dir)
		s, err := node.OpenStore(t.Context(), d, node.WithVerifyOnOpen(verify))
		require.NoError(t, err)
		require.Equal(t, []reconcile.Scope{scopeA, scopeB}, s.Scopes())
		for _, sc := range s.Scopes() {
			st, ok := s.Stats(sc)
			require.True(t, ok)
			want := stats[sc]
			require.Equal(t, want.Count, st.Count)
			require.Equal(t, want.Root, st.Root)
			require.Equal(t, want.Newest, st.Newest)
			tr, _ := s.Tree(sc)
			require.Equal(t, want.Root, tr.Root().Fingerprint())
		}
		// Messages are readable, and the store keeps working.
		got, err := s.Get(t.Context(), scopeB, keysOf(msgs[len(msgs)-3:]))
		require.NoError(t, err)
		require.Equal(t, msgs[len(msgs)-1], *got[2])
		// A Put after reopening lands, and the next reopen sees it.
		res, err := s.Put(t.Context(), msg(scopeB, 5, uint64(len(msgs)+i)))
		require.NoError(t, err)
		require.Len(t, res.Added, 1)
		stats[scopeB], _ = s.Stats(scopeB)
		require.NoError(t, s.Close())
		require.NoError(t, d.Close())
	}
}

func TestOpenDetectsCorruptCount(t *testing.T) {
	dir := t.TempDir()
	fillLevel(t, dir)

	d := openLevel(t, dir)
	defer d.Close()
	b, err := d.Get(t.Context(), recordKey(scopeA))
	require.NoError(t, err)
	// The count is the 8 bytes before the 32-byte sum.
	at := len(b) - 40
	binary.BigEndian.PutUint64(b[at:], binary.BigEndian.Uint64(b[at:])+1)
	require.NoError(t, d.Put(t.Context(), recordKey(scopeA), b))

	_, err = node.OpenStore(t.Context(), d)
	require.ErrorIs(t, err, node.ErrCorrupt)
}

func TestOpenDetectsDamage(t *testing.T) {
	msgs := []reconcile.Message{msg(scopeA, 10, 1), msg(scopeA, 20, 2), msg(scopeA, 30, 3)}
	id := scopeA.ID()
	idHex := hex.EncodeToString(id[:])
	for _, c := range []struct {
		name    string
		damage  func(t *testing.T, d ds.Batching)
		shallow bool // the O(1) check sees it
		kept    int  // messages after Repair; 0: Repair cannot mend it
	}{
		{"garbled record", func(t *testing.T, d ds.Batching) {
			require.NoError(t, d.Put(t.Context(), recordKey(scopeA), []byte{1, 2, 3}))
		}, true, 0},
		{"record under another ID", func(t *testing.T, d ds.Batching) {
			b, err := d.Get(t.Context(), recordKey(scopeA))
			require.NoError(t, err)
			require.NoError(t, d.Put(t.Context(), recordKey(scopeB), b))
		}, true, 0},
		{"tree lost", func(t *testing.T, d ds.Batching) {
			require.NoError(t, d.Delete(t.Context(), ds.NewKey("/storesync/tree/"+idHex+"/meta")))
		}, true, 3},
		{"message lost", func(t *testing.T, d ds.Batching) {
			require.NoError(t, d.Delete(t.Context(), msgRecordKey(msgs[1])))
		}, false, 2},
		{"stray message", func(t *testing.T, d ds.Batching) {
			stray := msg(scopeA, 99, 9)
			b, err := stray.ToPB().Marshal()
			require.NoError(t, err)
			require.NoError(t, d.Put(t.Context(), msgRecordKey(stray), b))
		}, false, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, d := newMemStore(t, []reconcile.Scope{scopeA})
			_, err := s.Put(t.Context(), msgs...)
			require.NoError(t, err)
			require.NoError(t, s.Close())
			c.damage(t, d)

			_, err = node.OpenStore(t.Context(), d, node.WithVerifyOnOpen(true))
			require.ErrorIs(t, err, node.ErrCorrupt)
			s2, err := node.OpenStore(t.Context(), d)
			if c.shallow {
				require.ErrorIs(t, err, node.ErrCorrupt)
			} else {
				require.NoError(t, err)
				require.NoError(t, s2.Close())
			}

			// Repair rebuilds from the messages, unless the scope's own
			// record is what was lost.
			reps, err := node.Repair(t.Context(), d)
			if c.kept == 0 {
				require.ErrorIs(t, err, node.ErrCorrupt)
				return
			}
			require.NoError(t, err)
			require.EqualValues(t, c.kept, reps[0].Messages)
			s3, err := node.OpenStore(t.Context(), d, node.WithVerifyOnOpen(true))
			require.NoError(t, err)
			st, _ := s3.Stats(scopeA)
			require.EqualValues(t, c.kept, st.Count)
			require.NoError(t, s3.Close())
		})
	}
}

func TestGetDetectsAlteredMessage(t *testing.T) {
	s, d := newMemStore(t, []reconcile.Scope{scopeA})
	m1, m2 := msg(scopeA, 10, 1), msg(scopeA, 20, 2)
	_, err := s.Put(t.Context(), m1, m2)
	require.NoError(t, err)
	// m1's record now holds m2's bytes.
	b, err := d.Get(t.Context(), msgRecordKey(m2))
	require.NoError(t, err)
	require.NoError(t, d.Put(t.Context(), msgRecordKey(m1), b))

	_, err = s.Get(t.Context(), scopeA, keysOf([]reconcile.Message{m1}))
	require.ErrorIs(t, err, node.ErrCorrupt)
	_, err = s.Query(t.Context(), node.Query{Scope: scopeA})
	require.ErrorIs(t, err, node.ErrCorrupt)
}

// TestRepairDropsAlteredMessages: Repair, over LevelDB, deletes a message
// record that does not hash to its key, and rebuilds the rest.
func TestRepairDropsAlteredMessages(t *testing.T) {
	dir := t.TempDir()
	msgs, stats := fillLevel(t, dir)
	d := openLevel(t, dir)
	defer d.Close()
	victim := msgs[len(msgs)-1] // of scope B, which retention left whole
	altered := victim
	altered.Payload = []byte("not what was hashed")
	b, err := altered.ToPB().Marshal()
	require.NoError(t, err)
	require.NoError(t, d.Put(t.Context(), msgRecordKey(victim), b))

	reps, err := node.Repair(t.Context(), d)
	require.NoError(t, err)
	byScope := map[reconcile.Scope]node.RepairReport{}
	for _, r := range reps {
		byScope[r.Scope] = r
	}
	require.Equal(t, stats[scopeA].Count, byScope[scopeA].Messages)
	require.Equal(t, stats[scopeA].Root, byScope[scopeA].Root)
	require.Zero(t, byScope[scopeA].Dropped)
	require.Equal(t, 1, byScope[scopeB].Dropped)
	require.Equal(t, stats[scopeB].Count-1, byScope[scopeB].Messages)
	s, err := node.OpenStore(t.Context(), d, node.WithVerifyOnOpen(true))
	require.NoError(t, err)
	got, err := s.Get(t.Context(), scopeB, keysOf([]reconcile.Message{victim}))
	require.NoError(t, err)
	require.Nil(t, got[0], "the altered record is gone")
	require.NoError(t, s.Close())
}
