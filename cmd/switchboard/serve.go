package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/switchboard/switchboard/cluster"
)

// adminTokenFile is where a generated admin token is kept, inside the data
// dir, readable by its owner only.
const adminTokenFile = "admin-token"

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("serve", flag.ContinueOnError)
	flags.SetOutput(stderr)
	dataDir := flags.String("data", envOr("SWITCHBOARD_DATA", "data"), "data directory (env SWITCHBOARD_DATA)")
	nodeID := flags.String("node-id", envOr("SWITCHBOARD_NODE_ID", "node1"), "this node's id (env SWITCHBOARD_NODE_ID)")
	clientAddr := flags.String("client-addr", envOr("SWITCHBOARD_CLIENT_ADDR", "127.0.0.1:7400"), "address for agents, connectors and ctl (env SWITCHBOARD_CLIENT_ADDR)")
	raftAddr := flags.String("raft-addr", envOr("SWITCHBOARD_RAFT_ADDR", "127.0.0.1:7401"), "address for Raft traffic between nodes (env SWITCHBOARD_RAFT_ADDR)")
	adminToken := flags.String("admin-token", os.Getenv("SWITCHBOARD_ADMIN_TOKEN"), "admin token (env SWITCHBOARD_ADMIN_TOKEN; default: generated once into <data>/admin-token)")
	logLevel := flags.String("log-level", envOr("SWITCHBOARD_LOG_LEVEL", "info"), "debug, info, warn or error")
	historySize := flags.Int("history", 65536, "events kept in memory for clients resuming after a reconnect")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("%w: serve takes no arguments, got %q", errUsage, flags.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level: %v", errUsage, err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	token, generated, err := loadAdminToken(*dataDir, *adminToken)
	if err != nil {
		return err
	}
	srv, err := cluster.Start(ctx, cluster.ServerConfig{
		Raft: cluster.Config{
			NodeID:    *nodeID,
			RaftAddr:  *raftAddr,
			DataDir:   *dataDir,
			Bootstrap: true,
			Logger:    logger.With("component", "raft"),
		},
		ClientAddr:  *clientAddr,
		AdminToken:  token,
		HistorySize: *historySize,
		Version:     version,
		Logger:      logger,
	})
	if err != nil {
		return err
	}
	abs, _ := filepath.Abs(*dataDir)
	fmt.Fprintf(stdout, "switchboard %s: node %s serving\n  clients: %s\n  raft:    %s\n  data:    %s\n",
		version, *nodeID, srv.ClientAddr(), *raftAddr, abs)
	if generated {
		fmt.Fprintf(stdout, "  admin token (shown once, saved in %s): %s\n",
			filepath.Join(abs, adminTokenFile), token)
	}
	<-ctx.Done()
	logger.Info("shutting down")
	return srv.Close()
}

// loadAdminToken returns the admin token: the given one, else the one saved
// in the data dir, else a new random one saved there (generated=true).
func loadAdminToken(dataDir, given string) (token string, generated bool, err error) {
	if given != "" {
		return given, false, nil
	}
	path := filepath.Join(dataDir, adminTokenFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, false, nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("read admin token: %w", err)
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", false, fmt.Errorf("generate admin token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("save admin token: %w", err)
	}
	return token, true, nil
}
