package cluster

import (
	"net"
	"time"
)

// Node-to-node connections leave from the address the node listens on.
//
// A node bound to one specific address (--raft-addr 10.0.0.1:7401 on a
// host that also has 192.168.1.5) dials its peers from that address, not
// from whichever one the kernel's routing picks: the peers see the
// connection come from the address the cluster knows the node by, so
// firewall rules that admit only the peers' addresses on the Raft and
// client ports hold on multi-homed hosts, and a test can tell the nodes
// apart by source address (cmd/switchboard/e2e_partition_test.go cuts
// one node off that way). Raft streams leave from the Raft listener's
// address, node calls from the client listener's.
//
// The kernel keeps choosing when that would not work or would change
// nothing: a wildcard bind (0.0.0.0, ::), a destination of the other IP
// family, a loopback bind dialling a non-loopback destination (a node
// bound to 127.0.0.1 behind a local proxy still reaches remote peers),
// and a destination given by name rather than as an IP (a name may
// resolve to addresses of either family).

// dialer returns a net.Dialer with timeout for a connection to address
// (host:port) that leaves from local's IP when it should, as above. local
// is the listener's bound address; nil leaves the choice to the kernel.
func dialer(local net.Addr, address string, timeout time.Duration) *net.Dialer {
	d := &net.Dialer{Timeout: timeout}
	if src := dialSource(local, address); src != nil {
		d.LocalAddr = src
	}
	return d
}

// dialSource is the local address (port 0) a connection to address should
// leave from, or nil to let the kernel choose.
func dialSource(local net.Addr, address string) *net.TCPAddr {
	la, ok := local.(*net.TCPAddr)
	if !ok || la == nil || la.IP == nil || la.IP.IsUnspecified() {
		return nil
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil
	}
	dst := net.ParseIP(host)
	if dst == nil || (dst.To4() == nil) != (la.IP.To4() == nil) {
		return nil
	}
	if la.IP.IsLoopback() && !dst.IsLoopback() {
		return nil
	}
	return &net.TCPAddr{IP: la.IP, Zone: la.Zone}
}
