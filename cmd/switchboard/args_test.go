package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

// runCLI runs the binary's entry point with args and returns its exit
// code and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code = run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// mustRun runs args and fails the test unless they exit 0.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("%q: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out, errOut)
	}
	return out
}

func TestParseAnywhere(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		pos     string
		addr    string
		verbose bool
	}{
		{[]string{"status"}, "status", "", false},
		{[]string{"--addr", "A", "status"}, "status", "A", false},
		{[]string{"status", "--addr", "A"}, "status", "A", false},
		{[]string{"get", "-v", "list", "--addr=A", "L1"}, "get list L1", "A", true},
		{[]string{"create", "list", "--", "--addr", "A"}, "create list --addr A", "", false},
		{[]string{"-v", "--", "-x"}, "-x", "", true},
		{nil, "", "", false},
	} {
		fs := newFlagSet("t")
		addr := fs.String("addr", "", "")
		verbose := fs.Bool("v", false, "")
		pos, err := parseAnywhere(fs, tc.args, io.Discard, "")
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if strings.Join(pos, " ") != tc.pos || *addr != tc.addr || *verbose != tc.verbose {
			t.Errorf("%q: positional %q addr %q v %v, want %q %q %v", tc.args, pos, *addr, *verbose, tc.pos, tc.addr, tc.verbose)
		}
	}
}

func TestParseAnywhereErrors(t *testing.T) {
	fs := newFlagSet("t")
	fs.String("addr", "", "")
	if _, err := parseAnywhere(fs, []string{"status", "--nope"}, io.Discard, ""); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "-nope") {
		t.Errorf("unknown flag after the verb: %v", err)
	}
	fs = newFlagSet("t")
	fs.String("addr", "", "")
	if _, err := parseAnywhere(fs, []string{"status", "--addr"}, io.Discard, ""); !errors.Is(err, errUsage) {
		t.Errorf("flag without its value: %v", err)
	}
	fs = newFlagSet("t")
	fs.String("addr", "", "the address")
	var help strings.Builder
	if _, err := parseAnywhere(fs, []string{"status", "--help"}, &help, "usage: t"); !errors.Is(err, flag.ErrHelp) ||
		!strings.HasPrefix(help.String(), "usage: t") || !strings.Contains(help.String(), "the address") {
		t.Errorf("--help: %v\n%s", err, help.String())
	}
	fs = newFlagSet("t")
	o := registerOutput(fs)
	if _, err := parseAnywhere(fs, []string{"-o", "yaml"}, io.Discard, ""); !errors.Is(err, errUsage) {
		t.Errorf("-o yaml: %v", err)
	}
	fs = newFlagSet("t")
	o = registerOutput(fs)
	if _, err := parseAnywhere(fs, []string{"x", "--output", "json"}, io.Discard, ""); err != nil || *o != outputJSON {
		t.Errorf("--output json: %v, %q", err, *o)
	}
}
