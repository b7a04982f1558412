package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
)

const (
	// socketName is the control socket's file name in the data folder.
	socketName = "control.sock"
	// maxSocketPath is the longest socket path every Unix takes (the
	// size of sun_path is 104 on the BSDs and macOS, 108 on Linux, and it
	// holds a terminating zero).
	maxSocketPath = 103
	// probeTimeout bounds the check for a node on an existing socket.
	probeTimeout = time.Second
)

// socketPath returns the control socket of the node with data folder dir.
func socketPath(dir string) (string, error) {
	p := filepath.Join(dir, socketName)
	if len(p) > maxSocketPath {
		return "", fmt.Errorf("control socket path %s is %d bytes, longer than a Unix socket path may be (%d): use a shorter --data", p, len(p), maxSocketPath)
	}
	return p, nil
}

// errNodeRunning means a live node answers on the control socket.
var errNodeRunning = errors.New("a node is already running")

// listenControl opens the control socket at path, readable and writable
// by the node's user alone. A socket file that no node answers on was
// left by a node that died, and is removed; a live node there is
// errNodeRunning, since two nodes must never share a data folder.
func listenControl(path string) (net.Listener, error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	case fi.Mode()&fs.ModeSocket == 0:
		return nil, fmt.Errorf("%s exists and is not a socket", path)
	default:
		if conn, err := net.DialTimeout("unix", path, probeTimeout); err == nil {
			_ = conn.Close()
			return nil, fmt.Errorf("%w: its control socket %s answers", errNodeRunning, path)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("remove stale control socket: %w", err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// Whoever can open the socket controls the node; the data folder is
	// private already, this keeps it so if the folder's mode is wider.
	if err := os.Chmod(path, 0o600); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return l, nil
}
