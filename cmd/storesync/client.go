package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"syscall"
)

// controlClient calls the control API of the node whose data folder is
// dir (see controlServer).
type controlClient struct {
	dir  string
	http *http.Client
}

// newControlClient returns a client for the node with data folder dir,
// or the error that tells the user how to start one if none runs there.
func newControlClient(dir string) (*controlClient, error) {
	path, err := socketPath(dir)
	if err != nil {
		return nil, err
	}
	c := &controlClient{dir: dir}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, c.noNode()
	}
	var d net.Dialer
	c.http = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
	}}
	return c, nil
}

func (c *controlClient) noNode() error {
	return fmt.Errorf("no node running with --data %s (start one with: storesync run --data %s)", c.dir, c.dir)
}

// call sends a request with body in (nil for none) and decodes a
// successful JSON answer into out.
func (c *controlClient) call(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return interrupted(ctx, fmt.Errorf("bad answer from the node: %w", err))
	}
	return nil
}

// errInterrupted replaces the errors of a request cut short by a signal,
// which say nothing more useful.
var errInterrupted = errors.New("interrupted")

// interrupted returns errInterrupted if ctx has ended, else err.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errInterrupted
	}
	return err
}

// send sends a request and returns the response if its status is 200;
// otherwise it returns the error the node gave. The caller closes the
// body.
func (c *controlClient) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	// The host part is not used: the transport always dials the socket.
	req, err := http.NewRequestWithContext(ctx, method, "http://storesync"+apiVersion+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, fs.ErrNotExist) {
			// A socket file nobody listens on: the node died.
			return nil, c.noNode()
		}
		return nil, interrupted(ctx, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	var e errorBody
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e); err != nil || e.Error == "" {
		return nil, fmt.Errorf("node answered %s", resp.Status)
	}
	return nil, errors.New(e.Error)
}
