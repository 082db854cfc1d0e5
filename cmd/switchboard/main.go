// Command switchboard is the one binary of Switchboard: it runs a node
// (serve), administers it (ctl), lets a person act as an agent or a customer
// from a terminal (agent, customer), and load-tests it (bench).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/switchboard/switchboard/cluster"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run a node (no flags: a single node with data in ./data)", runServe},
		{"ctl", "administer a node: create, get, subscribe, status", runCtl},
		{"agent", "act as an agent from a terminal: watch notifications, join, send, leave, close", runAgent},
		{"customer", "act as a customer through a channel connector", runCustomer},
		{"bench", "load-test a running cluster (--addr) or one started in-process (--embedded)", runBench},
		{"snapshot", "inspect a backup or a Raft snapshot offline: snapshot inspect FILE", runSnapshot},
		{"version", "print the version and commit (also --version)", runVersion},
		{"help", "this help, with every ctl verb and console command ('help COMMAND': its flags)", runHelp},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case cluster.RebuildCommand: // a node's snapshot rebuild (cluster/snapshot_child.go)
		if err := cluster.RunRebuildChild(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	case "--version", "-version":
		args = append([]string{"version"}, args[1:]...)
	case "-h", "-help", "--help":
		args = append([]string{"help"}, args[1:]...)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				fmt.Fprintln(stderr, err)
				return 2
			default:
				fmt.Fprintln(stderr, "switchboard "+c.name+":", err)
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "switchboard: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

var errUsage = errors.New("usage error")

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: switchboard <command> [arguments] [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'switchboard help' for every ctl verb and console command,\n'switchboard <command> --help' for a command's flags.")
}

// envOr returns the environment variable's value, or def.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// rebuildCommand is the command line of a child rebuilding a snapshot:
// this very binary (through /proc/self/exe where there is one, so an
// upgrade that replaced the file on disk does not change the code that
// rebuilds), with cluster.RebuildCommand as its argument.
func rebuildCommand() []string {
	self := "/proc/self/exe"
	if _, err := os.Stat(self); err != nil {
		if self, err = os.Executable(); err != nil {
			return nil
		}
	}
	return []string{self, cluster.RebuildCommand}
}
