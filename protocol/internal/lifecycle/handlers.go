// Package lifecycle tracks the stream handlers of a service, so that
// closing the service refuses new handlers and waits for those running.
package lifecycle

import "sync"

// Handlers counts the handlers in progress. The zero value is ready to
// use; it must not be copied after first use.
type Handlers struct {
	mu      sync.Mutex // orders Enter's Add against Stop
	stopped bool
	wg      sync.WaitGroup
}

// Enter registers a handler, unless Stop has been called; a handler that
// entered calls Done when it returns.
func (h *Handlers) Enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return false
	}
	h.wg.Add(1)
	return true
}

// Done marks a handler that entered as returned.
func (h *Handlers) Done() { h.wg.Done() }

// Stop makes every later Enter fail.
func (h *Handlers) Stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
}

// Wait returns once every handler that entered is done. Call it after
// Stop, and after ending what the handlers may wait on.
func (h *Handlers) Wait() { h.wg.Wait() }
