package lifecycle

import (
	"testing"
	"time"
)

// TestStopRefusesAndWaitWaits: handlers enter until Stop; Wait returns
// only once those that entered are done.
func TestStopRefusesAndWaitWaits(t *testing.T) {
	var h Handlers
	if !h.Enter() {
		t.Fatal("Enter before Stop refused")
	}
	h.Stop()
	if h.Enter() {
		t.Fatal("Enter after Stop accepted")
	}
	waited := make(chan struct{})
	go func() {
		h.Wait()
		close(waited)
	}()
	select {
	case <-waited:
		t.Fatal("Wait returned while a handler runs")
	case <-time.After(20 * time.Millisecond):
	}
	h.Done()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return once the handler was done")
	}
}
