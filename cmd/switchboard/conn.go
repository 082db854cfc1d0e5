package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchboard/switchboard/transport"
)

// connFlags are the flags every client subcommand shares.
type connFlags struct {
	addrs   string
	token   string
	data    string
	timeout time.Duration
}

func (c *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addrs, "addr", envOr("SWITCHBOARD_ADDR", "127.0.0.1:7400"), "node client address(es), comma-separated (env SWITCHBOARD_ADDR)")
	fs.StringVar(&c.token, "token", os.Getenv("SWITCHBOARD_TOKEN"), "credential (env SWITCHBOARD_TOKEN; admin default: <data>/admin-token)")
	fs.StringVar(&c.data, "data", envOr("SWITCHBOARD_DATA", "data"), "data dir of a local node, to find its admin token")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "time limit for connecting and for each request")
}

// adminToken returns --token, else the token saved by a local `serve`.
func (c *connFlags) adminToken() (string, error) {
	if c.token != "" {
		return c.token, nil
	}
	b, err := os.ReadFile(filepath.Join(c.data, adminTokenFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: no --token given and no %s: pass the admin token printed by 'switchboard serve'", errUsage, filepath.Join(c.data, adminTokenFile))
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func (c *connFlags) dial(ctx context.Context, role, user, token string, reconnect bool) (*transport.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return transport.Dial(dctx, transport.ClientConfig{
		Addrs:          strings.Split(c.addrs, ","),
		Role:           role,
		User:           user,
		Token:          token,
		DialTimeout:    c.timeout,
		RequestTimeout: c.timeout,
		Reconnect:      reconnect,
	})
}
