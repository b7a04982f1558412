package main

import (
	"encoding/hex"
	"time"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/node/snapshot"
)

// The JSON bodies of the snapshot endpoints of the control API (see
// controlServer), shared by the server and the export and import
// commands. The commands print the same reports when no node runs.

type exportRequest struct {
	// PubsubTopic of the scope, "" for the node's own.
	PubsubTopic  string `json:"pubsub_topic,omitempty"`
	ContentTopic string `json:"content_topic"`
	// Path is the absolute path of the file to write, on the node's
	// machine.
	Path string `json:"path"`
}

type importRequest struct {
	// Path is the absolute path of the snapshot file, on the node's
	// machine.
	Path string `json:"path"`
}

// snapshotProgress is a progress line of an export or an import. Kind is
// "export", "verify" (an import into a scope that holds messages,
// reading the whole file before storing anything) or "import" (storing).
type snapshotProgress struct {
	Kind         string `json:"kind"`
	PubsubTopic  string `json:"pubsub_topic"`
	ContentTopic string `json:"content_topic"`
	Done         int    `json:"done"`
	Total        int    `json:"total"`
	Bytes        int64  `json:"bytes"`
}

// snapshotLine is one line of an export (R exportReport) or import (R
// importReport) stream: exactly one field is set.
type snapshotLine[R any] struct {
	Progress *snapshotProgress `json:"progress,omitempty"`
	Report   *R                `json:"report,omitempty"`
	Error    string            `json:"error,omitempty"`
}

// snapshotFile describes a snapshot file by its header.
type snapshotFile struct {
	Path         string `json:"path"`
	PubsubTopic  string `json:"pubsub_topic"`
	ContentTopic string `json:"content_topic"`
	Count        uint64 `json:"count"`
	// Root is the hex of the 16-byte fingerprint of the file's messages.
	Root string `json:"root"`
	// Size is the file's length in bytes.
	Size int64 `json:"size"`
	// Created is when the export began.
	Created time.Time `json:"created"`
}

type exportReport struct {
	snapshotFile
	DurationMS float64 `json:"duration_ms"`
}

type importReport struct {
	// The file, whose root the import proved before storing anything.
	snapshotFile
	Batches      int    `json:"batches"`
	Added        int    `json:"added"`
	Duplicates   int    `json:"duplicates"`
	Rejected     int    `json:"rejected"`
	RejectReason string `json:"reject_reason,omitempty"`
	// Resumed says that an earlier import of the file had stored
	// ResumedBatches batches of ResumedMessages messages, which this one
	// did not read again.
	Resumed         bool  `json:"resumed"`
	ResumedBatches  int   `json:"resumed_batches"`
	ResumedMessages int   `json:"resumed_messages"`
	Bytes           int64 `json:"bytes"`
	// VerifyMS and StoreMS are the durations of the two passes; an
	// import in one pass has only the second.
	VerifyMS float64 `json:"verify_ms"`
	StoreMS  float64 `json:"store_ms"`
	// ScopeCount and ScopeRoot describe the scope after the import.
	ScopeCount uint64 `json:"scope_count"`
	ScopeRoot  string `json:"scope_root"`
}

func fileJSON(path string, h snapshot.Header) snapshotFile {
	root := h.Root()
	return snapshotFile{Path: path, PubsubTopic: h.Scope.PubsubTopic, ContentTopic: h.Scope.ContentTopic,
		Count: h.Count, Root: hex.EncodeToString(root[:]), Size: h.Size, Created: h.Created}
}

func exportJSON(path string, h snapshot.Header, d time.Duration) *exportReport {
	return &exportReport{snapshotFile: fileJSON(path, h), DurationMS: millis(d)}
}

func importJSON(path string, rep node.ImportReport) *importReport {
	out := &importReport{
		snapshotFile: fileJSON(path, rep.Header),
		Batches:      rep.Batches, Added: rep.Added, Duplicates: rep.Duplicates, Rejected: rep.Rejected,
		Resumed: rep.Resumed, ResumedBatches: rep.ResumedBatches, ResumedMessages: rep.ResumedMessages,
		Bytes: rep.Bytes, VerifyMS: millis(rep.Verify), StoreMS: millis(rep.Store),
		ScopeCount: rep.After.Count, ScopeRoot: hex.EncodeToString(rep.After.Root[:]),
	}
	if rep.RejectReason != nil {
		out.RejectReason = rep.RejectReason.Error()
	}
	return out
}
