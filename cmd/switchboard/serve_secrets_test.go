package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/testutil"
)

// clearSecretEnv keeps the caller's environment out of serve's flags.
func clearSecretEnv(t *testing.T) {
	for _, e := range []string{"SWITCHBOARD_ADMIN_TOKEN", "SWITCHBOARD_ADMIN_TOKEN_FILE",
		"SWITCHBOARD_CLUSTER_TOKEN", "SWITCHBOARD_CLUSTER_TOKEN_FILE", "SWITCHBOARD_DATA"} {
		t.Setenv(e, "")
	}
}

// serveFor runs serve with args until it returns or ctx ends.
func serveFor(t *testing.T, d time.Duration, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out, errb bytes.Buffer
	return runServe(ctx, args, &out, &errb)
}

// A node that joins or forms a cluster needs an explicit cluster token:
// the admin token alone no longer makes it a node.
func TestServeClusterModeNeedsClusterToken(t *testing.T) {
	clearSecretEnv(t)
	err := serveFor(t, 5*time.Second, "--data", t.TempDir(), "--client-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0",
		"--join", "127.0.0.1:1", "--admin-token", "adm")
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "cluster-token") {
		t.Fatalf("joining with only an admin token: %v, want a usage error naming --cluster-token", err)
	}
}

// The cluster token may not be the admin token: whoever holds it can act
// as a node.
func TestServeRefusesClusterTokenEqualToAdminToken(t *testing.T) {
	clearSecretEnv(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "ct")
	if err := os.WriteFile(file, []byte("same\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := serveFor(t, 5*time.Second, "--data", filepath.Join(dir, "data"), "--client-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0",
		"--admin-token", "same", "--cluster-token-file", file)
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "differ") {
		t.Fatalf("cluster token equal to the admin token: %v, want a usage error", err)
	}
}

// A single node generates its cluster token once, into <data>/cluster-token,
// readable by its owner only, different from the admin token, and keeps it
// across restarts.
func TestServeGeneratesClusterTokenForSingleNode(t *testing.T) {
	clearSecretEnv(t)
	data := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(data, clusterTokenFile)
	start := func() {
		ctx, cancel := context.WithCancel(context.Background())
		var (
			wg       sync.WaitGroup
			err      error
			out, log lockedBuffer
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err = runServe(ctx, []string{"--data", data, "--client-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0"}, &out, &log)
		}()
		testutil.WaitFor(t, 30*time.Second, func() bool { return strings.Contains(out.String(), "serving") },
			"serve did not start: %v", testutil.Lazy(log.String))
		cancel()
		wg.Wait()
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	}
	start()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	first, _ := os.ReadFile(path)
	admin, _ := os.ReadFile(filepath.Join(data, adminTokenFile))
	if len(bytes.TrimSpace(first)) < 16 || bytes.Equal(first, admin) {
		t.Fatalf("cluster token %q: want a long random secret, not the admin token %q", first, admin)
	}
	start()
	if again, _ := os.ReadFile(path); !bytes.Equal(again, first) {
		t.Fatal("the cluster token changed across a restart")
	}
}

func TestRateFlag(t *testing.T) {
	for in, want := range map[string]string{"off": "off", "200": "200:200", "0.5": "0.5:1", "5000:10000": "5000:10000"} {
		var r rateFlag
		if err := r.Set(in); err != nil || r.String() != want {
			t.Errorf("%q: %q, %v; want %q", in, r.String(), err, want)
		}
	}
	for _, bad := range []string{"", "0", "-1", "x", "5:0", "5:x"} {
		var r rateFlag
		if err := r.Set(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
