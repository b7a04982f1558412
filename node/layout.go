package node

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	ds "github.com/ipfs/go-datastore"

	"github.com/storesync/storesync/reconcile"
)

// The datastore keys of the store; the package doc describes the layout.
var (
	rootKey   = ds.NewKey("/storesync")
	formatKey = rootKey.ChildString("format")
	scopesKey = rootKey.ChildString("scope")
	msgsKey   = rootKey.ChildString("m")
	treesKey  = rootKey.ChildString("tree")
	// resumeKey holds what a catch-up or an import resumes from.
	resumeKey = rootKey.ChildString("resume")
	// legacyMsgsKey held the messages of format 1, by hash alone.
	legacyMsgsKey = rootKey.ChildString("msg")
)

// storeFormat is the layout version this code writes, kept at formatKey.
// Format 1 (no format record) kept messages by hash; format 2 keeps them
// by key, so that a scope reads in key order sequentially and a batch of
// messages writes one sequential run of records. Messages are found by
// key: peers ask for them by key.
const storeFormat = 2

// scopeIDHex returns the scope ID as it appears in datastore keys.
func scopeIDHex(id [8]byte) string { return hex.EncodeToString(id[:]) }

// scopeRecordKey returns the key of a scope's record.
func scopeRecordKey(idHex string) ds.Key { return scopesKey.ChildString(idHex) }

// treeKey returns the prefix of a scope's tree.
func treeKey(idHex string) ds.Key { return treesKey.ChildString(idHex) }

// sortedBase64 encodes keys in record names: base64 whose
// alphabet is in ASCII order, so that names of equal length sort like the
// bytes they encode, 27 % shorter than hex, and never holding "/".
var sortedBase64 = base64.NewEncoding("-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz").
	WithPadding(base64.NoPadding)

// strictBase64 decodes sortedBase64 names, refusing any that encoding
// would not have written (unused low bits set in the last character), so
// that a name decodes only from its one encoding.
var strictBase64 = sortedBase64.Strict()

// keyNameLen is the length of a key in a record name.
var keyNameLen = sortedBase64.EncodedLen(reconcile.KeySize)

// scopeKeys builds the datastore keys of one scope's records. Keys are
// built as strings from precomputed prefixes, without ds.Key's cleaning,
// which a store writing a million records a minute cannot afford; the
// prefixes are clean and the names need none.
type scopeKeys struct {
	msgs string // "/storesync/m/<scope ID hex>/"
}

func newScopeKeys(idHex string) scopeKeys {
	return scopeKeys{msgs: msgsKey.ChildString(idHex).String() + "/"}
}

// msg returns the key of the message with key k: its timestamp and hash
// (reconcile.Key.Bytes) in sortedBase64, so that records sort like keys.
func (s scopeKeys) msg(k reconcile.Key) ds.Key {
	return ds.RawKey(string(s.appendMsg(make([]byte, 0, len(s.msgs)+keyNameLen), k)))
}

// appendMsg appends the bytes of msg(k) to dst.
func (s scopeKeys) appendMsg(dst []byte, k reconcile.Key) []byte {
	var raw [reconcile.KeySize]byte
	binary.BigEndian.PutUint64(raw[:8], k.TS)
	copy(raw[8:], k.Hash[:])
	dst = append(dst, s.msgs...)
	n := len(dst)
	dst = append(dst, make([]byte, keyNameLen)...)
	sortedBase64.Encode(dst[n:], raw[:])
	return dst
}

// msgRange returns the record keys that bound the messages with keys in
// [lo, hi).
func (s scopeKeys) msgRange(lo, hi reconcile.Key) (start, limit ds.Key) {
	return s.msg(lo), s.msg(hi)
}

// parseMsgKey returns the key of a message record from its datastore key,
// which must lie under the scope's message prefix.
func (s scopeKeys) parseMsgKey(dk []byte) (reconcile.Key, error) {
	if len(dk) != len(s.msgs)+keyNameLen || string(dk[:len(s.msgs)]) != s.msgs {
		return reconcile.Key{}, fmt.Errorf("%w: stray message record %q", ErrCorrupt, dk)
	}
	var raw [reconcile.KeySize]byte
	name := dk[len(s.msgs):]
	if n, err := strictBase64.Decode(raw[:], name); err != nil || n != len(raw) {
		return reconcile.Key{}, fmt.Errorf("%w: stray message record %q", ErrCorrupt, dk)
	}
	return reconcile.KeyFromBytes(raw[:])
}

// RecordKeyOf returns the function that names the datastore record of a
// message of sc by its key. It serves tools that read or write a store's
// records without the store, such as the benchmark's baseline of raw
// puts of the same records.
func RecordKeyOf(sc reconcile.Scope) func(reconcile.Key) ds.Key {
	return newScopeKeys(scopeIDHex(sc.ID())).msg
}
