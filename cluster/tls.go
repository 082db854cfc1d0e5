package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// TLSConfig names the PEM files of a node's TLS setup. One CA signs every
// node's certificate; each node's certificate serves both ways: as a
// server certificate on the client port and the Raft port, and as the
// client certificate it presents to other nodes (mutual TLS).
type TLSConfig struct {
	// CertFile and KeyFile are this node's certificate and key. The
	// certificate must be valid for the host names or IPs other nodes and
	// clients dial, and for both server and client authentication.
	CertFile, KeyFile string
	// CAFile is the CA that signed every node's certificate. Nodes must
	// present a certificate it signed; clients may present one (it is
	// verified then) but need not.
	CAFile string
}

// TLSParts are the tls.Configs built from a TLSConfig.
type TLSParts struct {
	Server *tls.Config // the client port: clients and nodes
	Peer   *tls.Config // dialling another node's client port (ServiceConfig.PeerTLS)
	Raft   *tls.Config // the Raft stream layer, both ways (Config.RaftTLS)
}

// Build loads the files and returns the TLS configurations of a node.
func (c *TLSConfig) Build() (TLSParts, error) {
	if c.CertFile == "" || c.KeyFile == "" || c.CAFile == "" {
		return TLSParts{}, errors.New("cluster: TLS needs a certificate, its key and the CA")
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return TLSParts{}, fmt.Errorf("cluster: TLS: load key pair: %w", err)
	}
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		return TLSParts{}, fmt.Errorf("cluster: TLS: read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return TLSParts{}, fmt.Errorf("cluster: TLS: no certificate in %s", c.CAFile)
	}
	certs := []tls.Certificate{cert}
	return TLSParts{
		Server: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: certs,
			ClientCAs:    pool,
			// Clients may present a certificate; nodes must (the node
			// server checks for a verified chain).
			ClientAuth: tls.VerifyClientCertIfGiven,
		},
		Peer: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: certs,
			RootCAs:      pool,
		},
		Raft: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: certs,
			RootCAs:      pool,
			ClientCAs:    pool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
		},
	}, nil
}

// tlsStreamLayer is Raft's stream layer over mutual TLS.
type tlsStreamLayer struct {
	net.Listener
	advertise net.Addr
	cfg       *tls.Config
}

// Dial connects to another node's Raft address over TLS, from the
// listener's address when that is a specific one (dialsource.go).
func (l *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := tls.DialWithDialer(dialer(l.Listener.Addr(), string(address), timeout), "tcp", string(address), l.cfg)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Addr is the advertised address.
func (l *tlsStreamLayer) Addr() net.Addr {
	if l.advertise != nil {
		return l.advertise
	}
	return l.Listener.Addr()
}

// newTLSTransport is raft.NewTCPTransport over mutual TLS, bound to bind
// or served on cfg.Listener when set.
func newTLSTransport(bind string, advertise net.Addr, cfg Config, logger hclog.Logger) (*raft.NetworkTransport, error) {
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", bind); err != nil {
			return nil, err
		}
	}
	if advertise == nil {
		if ta, ok := ln.Addr().(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
			ln.Close()
			return nil, fmt.Errorf("cluster: raft address %s is not advertisable", ln.Addr())
		}
	}
	stream := &tlsStreamLayer{Listener: tls.NewListener(ln, cfg.RaftTLS), advertise: advertise, cfg: cfg.RaftTLS}
	return raft.NewNetworkTransportWithLogger(stream, cfg.TransportMaxPool, cfg.TransportTimeout, logger), nil
}
