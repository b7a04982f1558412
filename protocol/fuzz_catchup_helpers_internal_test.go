package protocol

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/klauspost/compress/zstd"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/reconcile"
)

// The catch-up fuzz targets drive the client and server code paths that
// read a peer's bytes without a network: a scripted stream replays the
// fuzzed bytes and records what the code under test writes.

var updateCatchUpCorpus = flag.Bool("update-catchup-corpus", false,
	"rewrite the catch-up fuzz targets' seed corpus in testdata/fuzz")

var (
	fuzzScope  = reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/fuzz/1/chat/proto"}
	fuzzHidden = reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/fuzz/1/hidden/proto"}
	fuzzOther  = reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/fuzz/1/other/proto"}
	fuzzPeer   = peer.ID("fuzz-peer")
)

// scriptedStream is a network.Stream that reads a fixed script and
// records what is written to it. Only the methods conn and the catch-up
// code call are implemented; the embedded nil interface panics on any
// other, which then shows up as a fuzz failure. Safe for concurrent use:
// resetOnCancel resets it from another goroutine.
type scriptedStream struct {
	network.Stream

	mu                   sync.Mutex
	in                   *bytes.Reader
	out                  bytes.Buffer
	reset, closed, wrote bool // wrote: CloseWrite was called
}

func newScriptedStream(in []byte) *scriptedStream {
	return &scriptedStream{in: bytes.NewReader(in)}
}

func (s *scriptedStream) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reset {
		return 0, network.ErrReset
	}
	return s.in.Read(p)
}

func (s *scriptedStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reset {
		return 0, network.ErrReset
	}
	if s.wrote || s.closed {
		return 0, errors.New("write on a closed stream")
	}
	return s.out.Write(p)
}

func (s *scriptedStream) written() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.out.Bytes())
}

func (s *scriptedStream) CloseWrite() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wrote = true
	return nil
}

func (s *scriptedStream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func (s *scriptedStream) Reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reset = true
	return nil
}

func (s *scriptedStream) ResetWithError(network.StreamErrorCode) error { return s.Reset() }
func (s *scriptedStream) SetDeadline(time.Time) error                  { return nil }
func (s *scriptedStream) SetReadDeadline(time.Time) error              { return nil }
func (s *scriptedStream) SetWriteDeadline(time.Time) error             { return nil }
func (s *scriptedStream) Scope() network.StreamScope                   { return &network.NullScope{} }

// Protocol is the newest version of the protocols, as negotiated with a
// peer of this code.
func (s *scriptedStream) Protocol() protocol.ID { return SyncID }

// scriptedHost is a host.Host whose NewStream returns the next scripted
// stream; handler registration is a no-op. Other methods panic.
type scriptedHost struct {
	host.Host
	streams chan network.Stream
}

func newScriptedHost(streams ...network.Stream) *scriptedHost {
	h := &scriptedHost{streams: make(chan network.Stream, len(streams))}
	for _, s := range streams {
		h.streams <- s
	}
	return h
}

func (h *scriptedHost) NewStream(context.Context, peer.ID, ...protocol.ID) (network.Stream, error) {
	select {
	case s := <-h.streams:
		return s, nil
	default:
		return nil, errors.New("no scripted stream left")
	}
}

func (h *scriptedHost) SetStreamHandler(protocol.ID, network.StreamHandler) {}
func (h *scriptedHost) RemoveStreamHandler(protocol.ID)                     {}

// fuzzPut is one PutCatchUp call.
type fuzzPut struct {
	scope reconcile.Scope
	msgs  []reconcile.Message
	curs  []Cursor
}

// fuzzStore is a CatchUpStore over sorted in-memory messages that records
// every PutCatchUp (and stores nothing from it), so that a test can check
// what the client handed on.
type fuzzStore struct {
	scopes map[[8]byte]reconcile.Scope
	keys   map[reconcile.Scope][]reconcile.Key // sorted
	raw    map[reconcile.Scope][][]byte        // wire encodings, as keys

	mu   sync.Mutex
	puts []fuzzPut
}

var _ CatchUpStore = (*fuzzStore)(nil)

func newFuzzStore(msgs map[reconcile.Scope][]reconcile.Message) *fuzzStore {
	s := &fuzzStore{scopes: map[[8]byte]reconcile.Scope{}, keys: map[reconcile.Scope][]reconcile.Key{},
		raw: map[reconcile.Scope][][]byte{}}
	for sc, ms := range msgs {
		s.scopes[sc.ID()] = sc
		ms = slices.Clone(ms)
		slices.SortFunc(ms, func(a, b reconcile.Message) int { k := b.Key(); return a.Key().Compare(k) })
		for _, m := range ms {
			raw, err := m.ToPB().Marshal()
			if err != nil {
				panic(err)
			}
			s.keys[sc] = append(s.keys[sc], m.Key())
			s.raw[sc] = append(s.raw[sc], raw)
		}
	}
	return s
}

// within returns the stored keys of sc in (after, until).
func (s *fuzzStore) within(sc reconcile.Scope, after, until reconcile.Key) []reconcile.Key {
	var out []reconcile.Key
	for _, k := range s.keys[sc] {
		if after.Less(k) && k.Less(until) {
			out = append(out, k)
		}
	}
	return out
}

func (s *fuzzStore) ScopeByID(id [8]byte) (reconcile.Scope, bool) {
	sc, ok := s.scopes[id]
	return sc, ok
}

func (s *fuzzStore) Set(sc reconcile.Scope) (reconcile.Set, bool) {
	if _, ok := s.scopes[sc.ID()]; !ok {
		return nil, false
	}
	return reconcile.SliceSet(s.keys[sc]), true
}

func (s *fuzzStore) Get(_ context.Context, _ reconcile.Scope, keys []reconcile.Key) ([]*reconcile.Message, error) {
	return make([]*reconcile.Message, len(keys)), nil
}

func (s *fuzzStore) Has(context.Context, reconcile.Scope, reconcile.Key) (bool, error) {
	return false, nil
}

func (s *fuzzStore) Put(_ context.Context, msgs []reconcile.Message) (int, error) {
	return len(msgs), nil
}

func (s *fuzzStore) Scan(ctx context.Context, sc reconcile.Scope, after, until reconcile.Key, fn func(reconcile.Key, []byte) error) error {
	for i, k := range s.keys[sc] {
		if !after.Less(k) || !k.Less(until) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(k, s.raw[sc][i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *fuzzStore) PutCatchUp(_ context.Context, sc reconcile.Scope, msgs []reconcile.Message, _ []reconcile.Key, curs ...Cursor) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.puts = append(s.puts, fuzzPut{scope: sc, msgs: slices.Clone(msgs), curs: slices.Clone(curs)})
	return len(msgs), nil
}

func (s *fuzzStore) Cursors(context.Context, reconcile.Scope) ([]Cursor, error) { return nil, nil }

// fuzzMessages returns n messages of sc with timestamps from ts0 on, two
// per timestamp, and compressible payloads of about size bytes, the same
// on every call.
func fuzzMessages(sc reconcile.Scope, ts0 int64, n, size int) []reconcile.Message {
	out := make([]reconcile.Message, n)
	for i := range out {
		p := []byte(strings.Repeat(fmt.Sprintf("message %d of %s; ", i, sc.ContentTopic), size/40+1))[:size]
		out[i] = reconcile.Message{PubsubTopic: sc.PubsubTopic, ContentTopic: sc.ContentTopic, Payload: p, Timestamp: ts0 + int64(i/2)}
	}
	return out
}

// fuzzFrames returns the varint-delimited encoding of msgs.
func fuzzFrames(msgs ...proto.Message) []byte {
	var b []byte
	for _, m := range msgs {
		raw, err := proto.Marshal(m)
		if err != nil {
			panic(err)
		}
		b = binary.AppendUvarint(b, uint64(len(raw)))
		b = append(b, raw...)
	}
	return b
}

// fuzzSplitFrames cuts b into its varint-delimited frames (with their
// prefixes); a trailing partial frame is returned as is.
func fuzzSplitFrames(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return append(out, b)
		}
		out = append(out, b[:k+int(n)])
		b = b[k+int(n):]
	}
	return out
}

// fuzzZstd compresses b whatever its size (compress leaves small
// batches plain).
func fuzzZstd(b []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		panic(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

// fuzzAllocated returns the bytes fn allocates on the heap (all goroutines).
func fuzzAllocated(fn func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	fn()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// fuzzDiscardLogger keeps the warnings about misbehaving peers, which fuzzed
// input triggers all the time, out of the fuzzer's output.
var fuzzDiscardLogger = slog.New(slog.DiscardHandler)

// fuzzOneOf reports whether err is, or wraps, one of targets, or is a
// *RemoteError (the peer's own error code).
func fuzzOneOf(err error, targets ...error) bool {
	var re *RemoteError
	if errors.As(err, &re) {
		return true
	}
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// fuzzWriteCorpus writes seeds (each the values of one fuzz call, in order)
// under testdata/fuzz/<name> when -update-catchup-corpus is set, and
// otherwise checks that each is there, so that go test replays them.
func fuzzWriteCorpus(t *testing.T, name string, seeds map[string][]any) {
	dir := filepath.Join("testdata", "fuzz", name)
	for file, vals := range seeds {
		var b strings.Builder
		b.WriteString("go test fuzz v1\n")
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				fmt.Fprintf(&b, "[]byte(%q)\n", v)
			case uint8:
				fmt.Fprintf(&b, "byte(%q)\n", v)
			case bool:
				fmt.Fprintf(&b, "bool(%v)\n", v)
			default:
				t.Fatalf("seed %s/%s: no corpus encoding for %T", name, file, v)
			}
		}
		path := filepath.Join(dir, file)
		if *updateCatchUpCorpus {
			require.NoError(t, os.MkdirAll(dir, 0o755))
			require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
			continue
		}
		_, err := os.Stat(path)
		require.NoError(t, err, "run go test ./protocol -run TestCatchUpFuzzCorpus -update-catchup-corpus")
	}
}
