package node

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	ma "github.com/multiformats/go-multiaddr"
)

// checkListenAddrs fails when a TCP port the node is to listen on is
// taken. go-libp2p binds its TCP listeners with SO_REUSEPORT, so that its
// dials can leave from the listening port; the price is that binding a
// port another process listens on the same way succeeds, and two nodes
// then share the port, each getting a share of the other's connections
// (which fail with "peer id mismatch"). A plain bind, which does not set
// SO_REUSEPORT, fails on such a port, so each address with a port is
// tried that way first. Addresses with port 0 and unparsable ones are
// left to libp2p.
func checkListenAddrs(addrs []string) error {
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		port, err := a.ValueForProtocol(ma.P_TCP)
		if err != nil || port == "0" {
			continue
		}
		host, err := a.ValueForProtocol(ma.P_IP4)
		if err != nil {
			if host, err = a.ValueForProtocol(ma.P_IP6); err != nil {
				continue
			}
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, port))
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("listen on %s: port %s is already in use", s, port)
		}
		if err == nil {
			_ = l.Close()
		}
	}
	return nil
}
