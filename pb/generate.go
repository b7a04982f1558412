// Package pb holds the storesync wire schema and its generated code.
//
// The Go files are produced by protoc (Debian's protobuf-compiler) with
// protoc-gen-gogofaster and committed; regenerate with `go generate ./pb`.
package pb

//go:generate protoc --proto_path=. --gogofaster_out=paths=source_relative:. message.proto reconcile.proto sync.proto gossip.proto catchup.proto waku.proto
