package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// runningNode returns a client for the node running on dir, or nil if
// none answers on its control socket (a socket file left by a node that
// died answers nothing). While a node runs, its LevelDB is locked, so
// export and import must go through it.
func runningNode(dir string) (*controlClient, error) {
	path, err := socketPath(dir)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialTimeout("unix", path, probeTimeout)
	if err != nil {
		return nil, nil
	}
	_ = conn.Close()
	return newControlClient(dir)
}

// localStore is the store in a data folder that no node runs on.
type localStore struct {
	*node.Store
	dir   string
	close func() error
}

// openLocal opens the store in dir as `storesync run` keeps it (LevelDB
// in DIR/datastore). With create, a folder where no node ever ran gets a
// new store; without, it is an error.
func openLocal(ctx context.Context, dir string, create bool) (*localStore, error) {
	path := filepath.Join(dir, "datastore")
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("data folder: %w", err)
		}
	} else if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no store in %s: no node ever ran with --data %s", dir, dir)
	}
	d, err := node.OpenLevelDB(path)
	if err != nil {
		return nil, fmt.Errorf("%w (does another storesync process, a node starting or an import, have --data %s open?)", err, dir)
	}
	s, err := node.OpenStore(ctx, d)
	if err != nil {
		return nil, errors.Join(err, d.Close())
	}
	return &localStore{Store: s, dir: dir, close: func() error { return errors.Join(s.Close(), d.Close()) }}, nil
}

// exportLocal exports a scope from the store in dir.
func exportLocal(ctx context.Context, dir string, sc reconcile.Scope, path string) (rep *exportReport, err error) {
	s, err := openLocal(ctx, dir, false)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, s.close()) }()
	if _, ok := s.Stats(sc); !ok {
		return nil, s.unknownScope(sc)
	}
	start := time.Now()
	h, err := s.ExportFile(ctx, sc, path)
	if err != nil {
		return nil, err
	}
	return exportJSON(path, h, time.Since(start)), nil
}

// importLocal imports a snapshot file into the store in dir, creating it
// if need be.
func importLocal(ctx context.Context, dir, path string) (rep *importReport, err error) {
	s, err := openLocal(ctx, dir, true)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, s.close()) }()
	r, err := s.ImportFile(ctx, path)
	if err != nil {
		return nil, err
	}
	return importJSON(path, r), nil
}

// unknownScope explains that the store does not keep sc, listing what it
// keeps under sc's pubsub topic or else the pubsub topics it has scopes
// under, as a node's control API does.
func (s *localStore) unknownScope(sc reconcile.Scope) error {
	var under, pubsubs []string
	for _, k := range s.Scopes() {
		if k.PubsubTopic == sc.PubsubTopic {
			under = append(under, k.ContentTopic)
		} else if len(pubsubs) == 0 || pubsubs[len(pubsubs)-1] != k.PubsubTopic {
			pubsubs = append(pubsubs, k.PubsubTopic)
		}
	}
	switch {
	case len(under) > 0:
		return fmt.Errorf("%w: content topic %q under pubsub topic %q (the store in %s keeps %s under it)",
			node.ErrUnknownScope, sc.ContentTopic, sc.PubsubTopic, s.dir, strings.Join(under, ", "))
	case len(pubsubs) > 0:
		return fmt.Errorf("%w: no scope kept under pubsub topic %q (the store in %s keeps scopes under %s)",
			node.ErrUnknownScope, sc.PubsubTopic, s.dir, strings.Join(pubsubs, ", "))
	}
	return fmt.Errorf("%w: the store in %s keeps no scopes", node.ErrUnknownScope, s.dir)
}
