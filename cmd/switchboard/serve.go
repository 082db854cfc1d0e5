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
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/node"

	"github.com/switchboard/switchboard/actors"
	"github.com/switchboard/switchboard/cluster"
)

// adminTokenFile and clusterTokenFile are where generated credentials are
// kept, inside the data dir, readable by its owner only.
const (
	adminTokenFile   = "admin-token"
	clusterTokenFile = "cluster-token"
)

// serveFlags are serve's flags; each has an environment variable.
type serveFlags struct {
	dataDir, nodeID, clientAddr, raftAddr string
	advertise, advertiseClient            string
	adminToken, clusterToken, logLevel    string
	httpAddr, logFormat                   string
	adminTokenFile, clusterTokenFile      string
	bootstrap, stayAfterRemoval           bool
	join                                  string
	bootstrapExpect, historySize          int
	snapshotThreshold, trailingLogs       uint64
	snapshotCapture                       string
	snapshotInterval, heartbeat, election time.Duration
	logoutGrace                           time.Duration
	restore, tlsCert, tlsKey, tlsCA       string
	clientFD, raftFD, httpFD              int   // inherited listening sockets, 0 if none
	envErr                                error // a malformed environment variable
	limits                                limitFlags
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	str := func(p *string, name, env, def, usage string) {
		fs.StringVar(p, name, envOr(env, def), usage+" (env "+env+")")
	}
	str(&f.dataDir, "data", "SWITCHBOARD_DATA", "data", "data directory")
	str(&f.nodeID, "node-id", "SWITCHBOARD_NODE_ID", "node1", "this node's id, unique in the cluster and never reused")
	str(&f.clientAddr, "client-addr", "SWITCHBOARD_CLIENT_ADDR", "127.0.0.1:7400", "address for agents, connectors, ctl and the other nodes")
	str(&f.advertiseClient, "advertise-client", "SWITCHBOARD_ADVERTISE_CLIENT", "", "client address the other nodes and tools reach this node at (default: --client-addr)")
	str(&f.raftAddr, "raft-addr", "SWITCHBOARD_RAFT_ADDR", "127.0.0.1:7401", "address for Raft traffic between nodes")
	str(&f.advertise, "advertise", "SWITCHBOARD_ADVERTISE", "", "Raft address the other nodes dial (default: --raft-addr)")
	str(&f.adminToken, "admin-token", "SWITCHBOARD_ADMIN_TOKEN", "", "admin token, the same on every node; prefer --admin-token-file or the environment, which ps does not show (default for a single node: generated once into <data>/admin-token)")
	str(&f.adminTokenFile, "admin-token-file", "SWITCHBOARD_ADMIN_TOKEN_FILE", "", "file holding the admin token")
	str(&f.clusterToken, "cluster-token", "SWITCHBOARD_CLUSTER_TOKEN", "", "node-to-node secret (node calls and Raft streams), the same on every node and not the admin token; prefer --cluster-token-file or the environment (default for a single node: generated once into <data>/cluster-token; required with --join or --bootstrap-expect)")
	str(&f.clusterTokenFile, "cluster-token-file", "SWITCHBOARD_CLUSTER_TOKEN_FILE", "", "file holding the cluster token")
	str(&f.snapshotCapture, "snapshot-capture", "SWITCHBOARD_SNAPSHOT_CAPTURE", cluster.CaptureProcess, "process: rebuild snapshots off the apply path, from the last snapshot and the log since, in a child process at the lowest CPU priority; replay: the same in this process; lock: encode the live state while writes wait")
	str(&f.logLevel, "log-level", "SWITCHBOARD_LOG_LEVEL", "info", "debug, info, warn or error")
	str(&f.logFormat, "log-format", "SWITCHBOARD_LOG_FORMAT", "text", "text (logfmt) or json (one object a line)")
	str(&f.httpAddr, "http-addr", "SWITCHBOARD_HTTP_ADDR", "127.0.0.1:7402", "address for /healthz, /readyz, /metrics and /debug/pprof/ (admin token); empty or off: none")
	str(&f.join, "join", "SWITCHBOARD_JOIN", "", "client addresses of existing nodes to join, comma-separated (retried until it gets in)")
	str(&f.restore, "restore", "SWITCHBOARD_RESTORE", "", "with --bootstrap and a new data dir: start the new cluster from this backup (ctl snapshot save)")
	str(&f.tlsCert, "tls-cert", "SWITCHBOARD_TLS_CERT", "", "this node's TLS certificate (PEM): enables TLS for clients and mutual TLS between nodes")
	str(&f.tlsKey, "tls-key", "SWITCHBOARD_TLS_KEY", "", "the certificate's key (PEM)")
	str(&f.tlsCA, "tls-ca", "SWITCHBOARD_TLS_CA", "", "the CA that signed every node's certificate (PEM)")
	fs.BoolVar(&f.bootstrap, "bootstrap", envBool("SWITCHBOARD_BOOTSTRAP", &f.envErr), "start a new cluster with this node as its only voter; others --join it (env SWITCHBOARD_BOOTSTRAP; the default with neither --join nor --bootstrap-expect)")
	fs.IntVar(&f.clientFD, "client-listener-fd", 0, "serve clients on this inherited, already listening socket instead of binding --client-addr (for a supervisor that binds ports: systemd socket activation, tests)")
	fs.IntVar(&f.raftFD, "raft-listener-fd", 0, "serve Raft on this inherited, already listening socket instead of binding --raft-addr")
	fs.IntVar(&f.httpFD, "http-listener-fd", 0, "serve HTTP on this inherited, already listening socket instead of binding --http-addr")
	fs.BoolVar(&f.stayAfterRemoval, "stay-after-removal", envBool("SWITCHBOARD_STAY_AFTER_REMOVAL", &f.envErr), "keep running (serving no clients, /readyz 503) after this node is removed from the cluster, instead of exiting (env SWITCHBOARD_STAY_AFTER_REMOVAL)")
	fs.IntVar(&f.bootstrapExpect, "bootstrap-expect", envInt("SWITCHBOARD_BOOTSTRAP_EXPECT", 0, &f.envErr), "form a new cluster once this many nodes, started with --join listing each other, have met (env SWITCHBOARD_BOOTSTRAP_EXPECT)")
	fs.IntVar(&f.historySize, "history", envInt("SWITCHBOARD_HISTORY", 65536, &f.envErr), "events kept in memory for clients resuming after a reconnect (env SWITCHBOARD_HISTORY)")
	fs.Uint64Var(&f.snapshotThreshold, "snapshot-threshold", uint64(envInt("SWITCHBOARD_SNAPSHOT_THRESHOLD", cluster.DefaultSnapshotThreshold, &f.envErr)), "log entries since the last snapshot that trigger a new one (env SWITCHBOARD_SNAPSHOT_THRESHOLD)")
	fs.Uint64Var(&f.trailingLogs, "trailing-logs", uint64(envInt("SWITCHBOARD_TRAILING_LOGS", cluster.DefaultTrailingLogs, &f.envErr)), "log entries kept after a snapshot, so a lagging node catches up without one (env SWITCHBOARD_TRAILING_LOGS)")
	fs.DurationVar(&f.snapshotInterval, "snapshot-interval", envDuration("SWITCHBOARD_SNAPSHOT_INTERVAL", cluster.DefaultSnapshotInterval, &f.envErr), "how often to check the snapshot threshold (env SWITCHBOARD_SNAPSHOT_INTERVAL)")
	fs.DurationVar(&f.heartbeat, "heartbeat-timeout", envDuration("SWITCHBOARD_HEARTBEAT_TIMEOUT", cluster.DefaultHeartbeatTimeout, &f.envErr), "how long a follower waits for the leader before an election (env SWITCHBOARD_HEARTBEAT_TIMEOUT)")
	fs.DurationVar(&f.logoutGrace, "logout-grace", envDuration("SWITCHBOARD_LOGOUT_GRACE", actors.DefaultLogoutGrace, &f.envErr), "how long an agent whose last session on this node closed may take to reconnect before the node logs it out (the leader also logs out agents no node has had a session of for as long, e.g. after their node died); negative: never (env SWITCHBOARD_LOGOUT_GRACE)")
	f.limits.register(fs, &f.envErr)
	fs.DurationVar(&f.election, "election-timeout", envDuration("SWITCHBOARD_ELECTION_TIMEOUT", 0, &f.envErr), "how long a candidate waits for votes (default: the heartbeat timeout) (env SWITCHBOARD_ELECTION_TIMEOUT)")
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("serve", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var f serveFlags
	f.register(flags)
	if err := flags.Parse(args); err != nil {
		return err
	}
	if f.envErr != nil {
		return fmt.Errorf("%w: %v", errUsage, f.envErr)
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("%w: serve takes no arguments, got %q", errUsage, flags.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level: %v", errUsage, err)
	}
	logger, err := newLogger(stderr, f.logFormat, level)
	if err != nil {
		return err
	}

	join := splitList(f.join)
	switch {
	case f.bootstrap && len(join) > 0:
		return fmt.Errorf("%w: --bootstrap starts a new cluster, --join enters an existing one: pick one", errUsage)
	case f.bootstrap && f.bootstrapExpect > 0:
		return fmt.Errorf("%w: --bootstrap and --bootstrap-expect exclude each other", errUsage)
	case f.bootstrapExpect > 0 && len(join) == 0:
		return fmt.Errorf("%w: --bootstrap-expect needs --join listing the other nodes' client addresses", errUsage)
	case f.bootstrapExpect < 0:
		return fmt.Errorf("%w: --bootstrap-expect %d", errUsage, f.bootstrapExpect)
	}
	// Neither joining nor forming a cluster: the embedded single node.
	bootstrap := f.bootstrap || (len(join) == 0 && f.bootstrapExpect == 0)
	if f.restore != "" && !bootstrap {
		return fmt.Errorf("%w: --restore starts a new cluster: use it with --bootstrap", errUsage)
	}
	if f.adminToken != "" && f.adminTokenFile != "" {
		return fmt.Errorf("%w: give --admin-token or --admin-token-file, not both", errUsage)
	}
	if f.clusterToken != "" && f.clusterTokenFile != "" {
		return fmt.Errorf("%w: give --cluster-token or --cluster-token-file, not both", errUsage)
	}
	if !bootstrap && (f.adminToken == "" && f.adminTokenFile == "" || f.clusterToken == "" && f.clusterTokenFile == "") {
		return fmt.Errorf("%w: a node that joins or forms a cluster needs the cluster's two credentials, the same on every node: "+
			"--admin-token-file (or --admin-token, env SWITCHBOARD_ADMIN_TOKEN) and --cluster-token-file (or --cluster-token, env SWITCHBOARD_CLUSTER_TOKEN)", errUsage)
	}
	if (f.tlsCert != "" || f.tlsKey != "" || f.tlsCA != "") && (f.tlsCert == "" || f.tlsKey == "" || f.tlsCA == "") {
		return fmt.Errorf("%w: TLS needs --tls-cert, --tls-key and --tls-ca together", errUsage)
	}

	// A first start that fails (a port in use, a bad backup) leaves no
	// data dir behind: the next attempt is a first start again, not a
	// restart of a node that never formed.
	newDir, err := isNewDir(f.dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	started := false
	if newDir {
		defer func() {
			if !started {
				if rmErr := os.RemoveAll(f.dataDir); rmErr != nil {
					logger.Warn("removing the data dir of a failed first start", "data", f.dataDir, "err", rmErr)
				}
			}
		}()
	}
	token, generated, err := loadSecret(f.dataDir, adminTokenFile, "admin token", f.adminToken, f.adminTokenFile)
	if err != nil {
		return err
	}
	clusterToken, clusterGenerated, err := loadSecret(f.dataDir, clusterTokenFile, "cluster token", f.clusterToken, f.clusterTokenFile)
	if err != nil {
		return err
	}
	if clusterToken == token {
		return fmt.Errorf("%w: the cluster token must differ from the admin token: whoever holds it can act as a node", errUsage)
	}
	cfg := node.Config{
		Raft: cluster.Config{
			NodeID:            f.nodeID,
			RaftAddr:          f.raftAddr,
			AdvertiseAddr:     f.advertise,
			DataDir:           f.dataDir,
			Bootstrap:         bootstrap,
			SnapshotThreshold: f.snapshotThreshold,
			SnapshotInterval:  f.snapshotInterval,
			SnapshotCapture:   f.snapshotCapture,
			RebuildCommand:    rebuildCommand(),
			TrailingLogs:      f.trailingLogs,
			HeartbeatTimeout:  f.heartbeat,
			ElectionTimeout:   f.election,
			Logger:            logger.With("component", "raft"),
		},
		ClientAddr:          f.clientAddr,
		HTTPAddr:            f.httpAddr,
		AdvertiseClientAddr: f.advertiseClient,
		AdminToken:          token,
		ClusterToken:        clusterToken,
		Join:                join,
		BootstrapExpect:     f.bootstrapExpect,
		HistorySize:         f.historySize,
		LogoutGrace:         f.logoutGrace,
		Version:             version,
		MaxFeatureLevel:     testMaxFeatureLevel(&f.envErr),
		Logger:              logger,
	}
	if cfg.ClientListener, err = inheritedListener(f.clientFD, "client"); err != nil {
		return err
	}
	if cfg.RaftListener, err = inheritedListener(f.raftFD, "raft"); err != nil {
		return err
	}
	if cfg.HTTPListener, err = inheritedListener(f.httpFD, "http"); err != nil {
		return err
	}
	f.limits.apply(&cfg)
	if f.tlsCert != "" {
		cfg.TLS = &cluster.TLSConfig{CertFile: f.tlsCert, KeyFile: f.tlsKey, CAFile: f.tlsCA}
	}
	if f.restore != "" {
		rf, err := os.Open(f.restore)
		if err != nil {
			return fmt.Errorf("--restore: %w", err)
		}
		defer rf.Close()
		cfg.Restore = rf
	}
	srv, err := node.Start(ctx, cfg)
	if err != nil {
		return err
	}
	started = true
	abs, _ := filepath.Abs(f.dataDir)
	mode := "single node"
	switch {
	case len(join) > 0 && f.bootstrapExpect > 0:
		mode = fmt.Sprintf("forming a cluster of %d with %s", f.bootstrapExpect, strings.Join(join, ","))
	case len(join) > 0:
		mode = "joining " + strings.Join(join, ",")
	case f.bootstrap:
		mode = "bootstrapped a new cluster"
	}
	httpAddr := srv.HTTPAddr()
	if httpAddr == "" {
		httpAddr = "off"
	}
	fmt.Fprintf(stdout, "switchboard %s: node %s serving (%s)\n  clients: %s\n  raft:    %s\n  http:    %s\n  data:    %s\n",
		version, f.nodeID, mode, srv.ClientAddr(), srv.Node.Addr(), httpAddr, abs)
	if generated {
		fmt.Fprintf(stdout, "  admin token (shown once, saved in %s): %s\n",
			filepath.Join(abs, adminTokenFile), token)
	}
	if clusterGenerated {
		fmt.Fprintf(stdout, "  cluster token generated into %s: nodes that join this one need it (--cluster-token-file)\n",
			filepath.Join(abs, clusterTokenFile))
	}
	removed := srv.RemovedCh()
	if f.stayAfterRemoval {
		removed = nil // stay: status and /readyz say removed
	}
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
		return srv.Close()
	case <-removed:
		logger.Error("stopping: this node was removed from the cluster")
		return errors.Join(fmt.Errorf("node %s was removed from the cluster and stops (to rejoin: a new data dir and --join; to keep it running removed: --stay-after-removal)", f.nodeID), srv.Close())
	case <-srv.Halted():
		halt := srv.HaltErr()
		logger.Error("stopping: this build cannot apply the cluster's log", "err", halt)
		return errors.Join(fmt.Errorf("node %s stopped: %w", f.nodeID, halt), srv.Close())
	}
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// envBool, envInt and envDuration read a flag's default from the
// environment, recording a malformed value in *errp.
func envBool(name string, errp *error) bool {
	v := os.Getenv(name)
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil && *errp == nil {
		*errp = fmt.Errorf("%s=%q: %v", name, v, err)
	}
	return b
}

func envInt(name string, def int, errp *error) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		if *errp == nil {
			*errp = fmt.Errorf("%s=%q: %v", name, v, err)
		}
		return def
	}
	return n
}

func envDuration(name string, def time.Duration, errp *error) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		if *errp == nil {
			*errp = fmt.Errorf("%s=%q: %v", name, v, err)
		}
		return def
	}
	return d
}

// loadSecret returns a credential: the given one, else the one in file,
// else the one saved in the data dir under name, else a new random one
// saved there, readable by the owner only (generated=true). Cluster mode
// has checked that one of the first two is set.
func loadSecret(dataDir, name, what, given, file string) (token string, generated bool, err error) {
	if given != "" {
		return given, false, nil
	}
	if file != "" {
		t, err := readTokenFile(what+" file", file)
		return t, false, err
	}
	path := filepath.Join(dataDir, name)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, false, nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("read %s: %w", what, err)
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", false, fmt.Errorf("generate %s: %w", what, err)
	}
	token = base64.RawURLEncoding.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("save %s: %w", what, err)
	}
	return token, true, nil
}

// testMaxFeatureLevel reads SWITCHBOARD_TEST_MAX_FEATURE_LEVEL, a test-only
// knob that makes this build act as an older one (a node that applies
// feature levels up to that number), so that rolling upgrades are tested
// with the real binary. Unset: this build's own level.
func testMaxFeatureLevel(errp *error) uint32 {
	return uint32(envInt("SWITCHBOARD_TEST_MAX_FEATURE_LEVEL", 0, errp))
}

// inheritedListener is the listening socket a parent process handed over
// as file descriptor fd (nil when fd is 0).
func inheritedListener(fd int, name string) (net.Listener, error) {
	if fd == 0 {
		return nil, nil
	}
	if fd < 3 {
		return nil, fmt.Errorf("%w: --%s-listener-fd %d: descriptors 0-2 are stdin, stdout and stderr", errUsage, name, fd)
	}
	f := os.NewFile(uintptr(fd), name+"-listener")
	if f == nil {
		return nil, fmt.Errorf("--%s-listener-fd %d: not an open descriptor", name, fd)
	}
	defer f.Close() // FileListener holds its own duplicate
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("--%s-listener-fd %d: %w", name, fd, err)
	}
	return ln, nil
}
