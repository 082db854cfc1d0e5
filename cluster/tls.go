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

// tlsParts are the tls.Configs built from a TLSConfig.
type tlsParts struct {
	server *tls.Config // client port: clients and nodes
	peer   *tls.Config // dialling another node's client port
	raft   *tls.Config // the Raft stream layer, both ways
}

func (c *TLSConfig) build() (tlsParts, error) {
	if c.CertFile == "" || c.KeyFile == "" || c.CAFile == "" {
		return tlsParts{}, errors.New("cluster: TLS needs a certificate, its key and the CA")
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return tlsParts{}, fmt.Errorf("cluster: TLS: load key pair: %w", err)
	}
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		return tlsParts{}, fmt.Errorf("cluster: TLS: read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return tlsParts{}, fmt.Errorf("cluster: TLS: no certificate in %s", c.CAFile)
	}
	certs := []tls.Certificate{cert}
	return tlsParts{
		server: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: certs,
			ClientCAs:    pool,
			// Clients may present a certificate; nodes must (the node
			// server checks for a verified chain).
			ClientAuth: tls.VerifyClientCertIfGiven,
		},
		peer: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: certs,
			RootCAs:      pool,
		},
		raft: &tls.Config{
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

// Dial connects to another node's Raft address over TLS.
func (l *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	c, err := tls.DialWithDialer(d, "tcp", string(address), l.cfg)
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

// newTLSTransport is raft.NewTCPTransport over mutual TLS.
func newTLSTransport(bind string, advertise net.Addr, cfg Config, logger hclog.Logger) (*raft.NetworkTransport, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		if ta, ok := ln.Addr().(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
			ln.Close()
			return nil, fmt.Errorf("cluster: raft address %s is not advertisable", ln.Addr())
		}
	}
	stream := &tlsStreamLayer{Listener: tls.NewListener(ln, cfg.raftTLS), advertise: advertise, cfg: cfg.raftTLS}
	return raft.NewNetworkTransportWithLogger(stream, cfg.TransportMaxPool, cfg.TransportTimeout, logger), nil
}
