package main

import (
	"encoding/json"
	"runtime/debug"
	"strings"
	"testing"
)

// TestReadBuildVersion feeds synthetic build info: a development build
// with and without VCS stamps, a tagged module, a pseudo-version, and the
// -ldflags override.
func TestReadBuildVersion(t *testing.T) {
	rev := "0123456789abcdef0123456789abcdef01234567"
	settings := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	bi := func(mod string, s []debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/switchboard/switchboard", Version: mod}, Settings: s}
	}
	for _, tc := range []struct {
		name     string
		override string
		bi       *debug.BuildInfo
		ok       bool
		want     buildVersion
		short    string
		line     string
	}{
		{"no build info", "dev", nil, false, buildVersion{Version: "dev"}, "dev", "switchboard dev (commit unknown)"},
		{"devel, no vcs", "dev", bi("(devel)", nil), true, buildVersion{Version: "dev", GoVersion: "go1.26.8"}, "dev",
			"switchboard dev (commit unknown, go1.26.8)"},
		{"devel with vcs", "dev", bi("(devel)", settings("vcs", "git", "vcs.revision", rev, "vcs.modified", "true")), true,
			buildVersion{Version: "dev", Commit: rev, Modified: true, GoVersion: "go1.26.8"}, "dev-0123456789ab-dirty",
			"switchboard dev (commit 0123456789ab, modified, go1.26.8)"},
		{"tagged module", "dev", bi("v1.2.3", settings("vcs.revision", rev, "vcs.modified", "false")), true,
			buildVersion{Version: "v1.2.3", Commit: rev, GoVersion: "go1.26.8"}, "v1.2.3",
			"switchboard v1.2.3 (commit 0123456789ab, go1.26.8)"},
		{"pseudo-version", "", bi("v0.0.0-20260101120000-0123456789ab+dirty", settings("vcs.revision", rev, "vcs.modified", "true")), true,
			buildVersion{Version: "v0.0.0-20260101120000-0123456789ab+dirty", Commit: rev, Modified: true, GoVersion: "go1.26.8"},
			"v0.0.0-20260101120000-0123456789ab+dirty", "switchboard v0.0.0-20260101120000-0123456789ab+dirty (commit 0123456789ab, modified, go1.26.8)"},
		{"ldflags override wins", "v2.0.0", bi("v1.2.3", settings("vcs.revision", rev)), true,
			buildVersion{Version: "v2.0.0", Commit: rev, GoVersion: "go1.26.8"}, "v2.0.0", "switchboard v2.0.0 (commit 0123456789ab, go1.26.8)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := readBuildVersion(tc.override, tc.bi, tc.ok)
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if got.short() != tc.short || got.String() != tc.line {
				t.Fatalf("short %q line %q, want %q %q", got.short(), got.String(), tc.short, tc.line)
			}
		})
	}
}

// TestVersionCommand: --version works, `version` says more than "dev",
// and -o json has stable keys.
func TestVersionCommand(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out := mustRun(t, args...)
		if !strings.HasPrefix(out, "switchboard ") || !strings.Contains(out, "commit ") {
			t.Errorf("%q: %q", args, out)
		}
	}
	var v map[string]any
	out := mustRun(t, "version", "-o", "json")
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("version -o json: %v\n%s", err, out)
	}
	for _, k := range []string{"version", "commit", "modified", "go_version"} {
		if _, ok := v[k]; !ok {
			t.Errorf("version -o json: no %q in %s", k, out)
		}
	}
	if code, _, _ := runCLI(t, "version", "extra"); code != 2 {
		t.Errorf("version extra: exit %d, want 2", code)
	}
}
