package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/switchboard/switchboard/transport"
)

// connFlags are the flags every client subcommand shares.
type connFlags struct {
	addrs     string
	token     string
	tokenFile string
	data      string
	timeout   time.Duration
	// TLS: the CA of the nodes' certificates, and an optional client
	// certificate.
	tlsCA, tlsCert, tlsKey string
}

func (c *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addrs, "addr", envOr("SWITCHBOARD_ADDR", "127.0.0.1:7400"), "node client address(es), comma-separated (env SWITCHBOARD_ADDR)")
	fs.StringVar(&c.token, "token", "", "credential (see the token lookup order in --help; --token-file keeps it out of argv)")
	fs.StringVar(&c.tokenFile, "token-file", "", "read the credential from this file")
	fs.StringVar(&c.data, "data", envOr("SWITCHBOARD_DATA", "data"), "data dir of a local node: ctl's last resort for the admin token is <data>/admin-token (env SWITCHBOARD_DATA)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "time limit for connecting and for each request")
	fs.StringVar(&c.tlsCA, "tls-ca", os.Getenv("SWITCHBOARD_TLS_CA"), "connect over TLS, trusting this CA (PEM) (env SWITCHBOARD_TLS_CA)")
	fs.StringVar(&c.tlsCert, "tls-cert", os.Getenv("SWITCHBOARD_TLS_CLIENT_CERT"), "client certificate to present over TLS (optional) (env SWITCHBOARD_TLS_CLIENT_CERT)")
	fs.StringVar(&c.tlsKey, "tls-key", os.Getenv("SWITCHBOARD_TLS_CLIENT_KEY"), "its key (env SWITCHBOARD_TLS_CLIENT_KEY)")
}

// tlsConfig returns the client TLS configuration, nil without --tls-ca.
func (c *connFlags) tlsConfig() (*tls.Config, error) {
	if c.tlsCA == "" {
		if c.tlsCert != "" {
			return nil, fmt.Errorf("%w: --tls-cert needs --tls-ca", errUsage)
		}
		return nil, nil
	}
	pem, err := os.ReadFile(c.tlsCA)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-ca: no certificate in %s", c.tlsCA)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	if c.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func (c *connFlags) dial(ctx context.Context, role, user, token string, reconnect bool) (*transport.Client, error) {
	tlsCfg, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return transport.Dial(dctx, transport.ClientConfig{
		TLS:            tlsCfg,
		Addrs:          strings.Split(c.addrs, ","),
		Role:           role,
		User:           user,
		Token:          token,
		DialTimeout:    c.timeout,
		RequestTimeout: c.timeout,
		Reconnect:      reconnect,
	})
}
