package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// buildVersion is what this binary says about itself: the version, and the
// commit it was built from when the build recorded one.
type buildVersion struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`   // full revision; "" when unknown
	Modified  bool   `json:"modified"` // built from a tree with uncommitted changes
	GoVersion string `json:"go_version"`
}

// build is this binary's version, resolved once at start-up.
var build buildVersion

func init() {
	bi, ok := debug.ReadBuildInfo()
	build = readBuildVersion(version, bi, ok)
	// serve reports version in `ctl status` and its start-up line.
	version = build.short()
}

// readBuildVersion works out the version from the -ldflags "-X
// main.version=..." override (anything but "dev") or else the module
// version the Go toolchain stamped (a tag for `go install ...@v1.2.3`, a
// pseudo-version for a build in a git checkout), and the commit from the
// vcs.revision and vcs.modified settings.
func readBuildVersion(override string, bi *debug.BuildInfo, ok bool) buildVersion {
	v := buildVersion{Version: "dev"}
	if override != "" && override != "dev" {
		v.Version = override
	}
	if !ok || bi == nil {
		return v
	}
	v.GoVersion = bi.GoVersion
	if mv := bi.Main.Version; v.Version == "dev" && mv != "" && mv != "(devel)" {
		v.Version = mv
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// short is the one-word version nodes report in their status: the
// version, or for a development build "dev-" and the short commit (and
// "-dirty" when the tree was modified).
func (v buildVersion) short() string {
	if v.Version != "dev" || v.Commit == "" {
		return v.Version
	}
	s := "dev-" + shortCommit(v.Commit)
	if v.Modified {
		s += "-dirty"
	}
	return s
}

// String is the line `switchboard version` prints.
func (v buildVersion) String() string {
	var extra []string
	if v.Commit == "" {
		extra = append(extra, "commit unknown")
	} else {
		extra = append(extra, "commit "+shortCommit(v.Commit))
		if v.Modified {
			extra = append(extra, "modified")
		}
	}
	if v.GoVersion != "" {
		extra = append(extra, v.GoVersion)
	}
	return fmt.Sprintf("switchboard %s (%s)", v.Version, strings.Join(extra, ", "))
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// runVersion prints the version: `switchboard version [-o json]`, also
// reached as `switchboard --version`.
func runVersion(_ context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("version")
	output := registerOutput(fs)
	pos, err := parseAnywhere(fs, args, stdout, versionUsage)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: version takes no arguments, got %q", errUsage, pos)
	}
	if *output == outputJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(build)
	}
	_, err = fmt.Fprintln(stdout, build)
	return err
}

const versionUsage = `usage: switchboard version [-o table|json]
       switchboard --version

Prints the version and the commit this binary was built from.`
