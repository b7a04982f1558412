package node

import (
	"encoding/hex"

	ds "github.com/ipfs/go-datastore"

	"github.com/storesync/storesync/reconcile"
)

// The datastore keys of the store; the package doc describes the layout.
var (
	rootKey   = ds.NewKey("/storesync")
	scopesKey = rootKey.ChildString("scope")
	msgsKey   = rootKey.ChildString("msg")
	treesKey  = rootKey.ChildString("tree")
)

// scopeIDHex returns the scope ID as it appears in datastore keys.
func scopeIDHex(id [8]byte) string { return hex.EncodeToString(id[:]) }

// scopeRecordKey returns the key of a scope's record.
func scopeRecordKey(idHex string) ds.Key { return scopesKey.ChildString(idHex) }

// scopeMsgsKey returns the key under which a scope's messages live.
func scopeMsgsKey(idHex string) ds.Key { return msgsKey.ChildString(idHex) }

// msgKey returns the key of one message.
func msgKey(idHex string, h reconcile.Hash) ds.Key {
	return scopeMsgsKey(idHex).ChildString(h.String())
}

// treeKey returns the prefix of a scope's tree.
func treeKey(idHex string) ds.Key { return treesKey.ChildString(idHex) }
