package node

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	ma "github.com/multiformats/go-multiaddr"
)

// checkListenAddrs fails when a TCP port the node is to listen on is
// taken, by another process or by another of its own addresses. go-libp2p
// binds its TCP listeners, websocket ones included, with SO_REUSEPORT, so
// that its dials can leave from the listening port; the price is that
// binding a port another listener holds the same way succeeds, and the
// two then share the port, each getting a share of the other's
// connections (which fail with "peer id mismatch", or reach a transport
// that does not speak what the peer dialled). A plain bind, which does
// not set SO_REUSEPORT, fails on such a port, so each address with a port
// is tried that way first; and two addresses of the node on one port (a
// TCP and a websocket one, say) are refused outright. Addresses with port
// 0 and unparsable ones are left to libp2p.
func checkListenAddrs(addrs []string) error {
	var seen []tcpListen
	for _, s := range addrs {
		l, ok := parseTCPListen(s)
		if !ok {
			continue
		}
		for _, o := range seen {
			if o.overlaps(l) {
				return fmt.Errorf("listen on %s and %s: both on port %s; TCP and websocket addresses need ports of their own", o.addr, s, l.port)
			}
		}
		seen = append(seen, l)
		ln, err := net.Listen("tcp", net.JoinHostPort(l.host, l.port))
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("listen on %s: port %s is already in use", s, l.port)
		}
		if err == nil {
			_ = ln.Close()
		}
	}
	return nil
}

// tcpListen is a listen address's TCP host and port.
type tcpListen struct {
	addr, host, port string
	ip6              bool
}

// parseTCPListen reads the IP and TCP port of a listen address; ok is
// false for port 0, for addresses without both, and for unparsable ones.
func parseTCPListen(s string) (tcpListen, bool) {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return tcpListen{}, false
	}
	port, err := a.ValueForProtocol(ma.P_TCP)
	if err != nil || port == "0" {
		return tcpListen{}, false
	}
	l := tcpListen{addr: s, port: port}
	if l.host, err = a.ValueForProtocol(ma.P_IP4); err != nil {
		if l.host, err = a.ValueForProtocol(ma.P_IP6); err != nil {
			return tcpListen{}, false
		}
		l.ip6 = true
	}
	return l, true
}

// overlaps reports whether two listeners would bind the same port of
// the same address: the same IP, or the unspecified address of the
// family on either side.
func (l tcpListen) overlaps(o tcpListen) bool {
	if l.port != o.port || l.ip6 != o.ip6 {
		return false
	}
	a, b := net.ParseIP(l.host), net.ParseIP(o.host)
	return a.Equal(b) || a.IsUnspecified() || b.IsUnspecified()
}
