package cluster

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// newRaftTransport builds the Raft TCP transport bound to bind, or served
// on cfg.Listener when set. When cfg.StreamLayer is set, the TCP stream
// layer is handed to it first and the transport runs over what it returns
// (tests use this to inject network faults). With cfg.RaftSecret, every
// stream is authenticated first (raftauth.go). With none of these, it is
// raft's own TCP transport, unchanged.
func newRaftTransport(cfg *Config, bind string, advertise net.Addr, logger hclog.Logger) (*raft.NetworkTransport, error) {
	if cfg.StreamLayer == nil && cfg.Listener == nil && len(cfg.RaftSecret) == 0 {
		return raft.NewTCPTransportWithLogger(bind, advertise, cfg.TransportMaxPool, cfg.TransportTimeout, logger)
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", bind); err != nil {
			return nil, err
		}
	}
	base := &tcpStreamLayer{Listener: ln, advertise: advertise}
	if a, ok := base.Addr().(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() {
		_ = ln.Close()
		return nil, fmt.Errorf("local address %v is not advertisable", base.Addr())
	}
	var stream raft.StreamLayer = base
	if len(cfg.RaftSecret) > 0 {
		stream = newAuthStreamLayer(base, cfg.RaftSecret, cfg.Logger.With("node", cfg.NodeID, "component", "raft-auth"))
	}
	if cfg.StreamLayer != nil {
		if stream = cfg.StreamLayer(stream); stream == nil {
			_ = ln.Close()
			return nil, errors.New("Config.StreamLayer returned nil")
		}
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: cfg.TransportMaxPool,
		Timeout: cfg.TransportTimeout,
		Logger:  logger,
	}), nil
}

// tcpStreamLayer is a plain TCP raft.StreamLayer like raft's TCPStreamLayer,
// which has no exported constructor: a listener, a dialer and the address
// to advertise (nil: the listener's).
type tcpStreamLayer struct {
	net.Listener
	advertise net.Addr
}

// Dial implements raft.StreamLayer. The stream leaves from the listener's
// address when that is a specific one (dialsource.go).
func (s *tcpStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dialer(s.Listener.Addr(), string(address), timeout).Dial("tcp", string(address))
}

// Addr returns the advertised address.
func (s *tcpStreamLayer) Addr() net.Addr {
	if s.advertise != nil {
		return s.advertise
	}
	return s.Listener.Addr()
}
