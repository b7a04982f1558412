// Package streams sets up the libp2p streams of the module's services:
// each stream goes into its service's resource scope and reserves there
// the memory it buffers, so that the resource manager's limits for the
// service bound them. On failure a stream is reset.
package streams

import "github.com/libp2p/go-libp2p/core/network"

// Attach puts st in the resource scope of the named service; on failure
// it resets st.
func Attach(st network.Stream, service string) error {
	if err := st.Scope().SetService(service); err != nil {
		_ = st.Reset()
		return err
	}
	return nil
}

// Reserve reserves mem bytes for st, which the caller releases
// (st.Scope().ReleaseMemory); on failure it resets st.
func Reserve(st network.Stream, mem int) error {
	if err := st.Scope().ReserveMemory(mem, network.ReservationPriorityAlways); err != nil {
		_ = st.Reset()
		return err
	}
	return nil
}

// Setup is Attach, then Reserve.
func Setup(st network.Stream, service string, mem int) error {
	if err := Attach(st, service); err != nil {
		return err
	}
	return Reserve(st, mem)
}
