package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// newFlagSet returns a flag set that prints nothing by itself: parseAnywhere
// turns its errors into usage errors and prints help only when asked.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseAnywhere parses fs's flags wherever they stand in args — before,
// between or after the positional arguments — and returns the positional
// arguments in order. "--" ends the flags: everything after it is
// positional. -h or --help prints help (usage and the flags) to w and
// returns flag.ErrHelp; an unknown flag or a bad value is a usage error
// that names it.
func parseAnywhere(fs *flag.FlagSet, args []string, w io.Writer, usage string) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			printHelp(w, usage, fs)
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v (see 'switchboard %s --help')", errUsage, err, fs.Name())
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// printHelp prints usage, then fs's flags.
func printHelp(w io.Writer, usage string, fs *flag.FlagSet) {
	fmt.Fprintln(w, strings.TrimRight(usage, "\n"))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags (anywhere on the command line):")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// The output formats of -o.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// outputFlag is the value of -o: table or json.
type outputFlag string

func (o *outputFlag) String() string { return string(*o) }

func (o *outputFlag) Set(s string) error {
	switch s {
	case outputTable, outputJSON:
		*o = outputFlag(s)
		return nil
	}
	return fmt.Errorf("want %s or %s", outputTable, outputJSON)
}

// registerOutput adds -o (and --output) to fs.
func registerOutput(fs *flag.FlagSet) *outputFlag {
	o := outputFlag(outputTable)
	fs.Var(&o, "o", "output `format`: table or json (stable snake_case keys)")
	fs.Var(&o, "output", "the same as -o (`format`)")
	return &o
}
