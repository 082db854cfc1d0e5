package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tokenLookup says where a client command looks for its credential. The
// order is always: --token, --token-file, each environment variable in
// turn, then file.
type tokenLookup struct {
	what string   // "admin token", "agent token", ...
	envs []string // environment variables, first found wins
	// file is the last resort ("" for none); it is read relative to
	// --data at lookup time.
	file string
	hint string // how to obtain one, for the error
}

var (
	adminTokenLookup = tokenLookup{
		what: "admin token",
		envs: []string{"SWITCHBOARD_ADMIN_TOKEN", "SWITCHBOARD_TOKEN"},
		file: adminTokenFile,
		hint: "a single node started by 'switchboard serve' writes its generated token to <data>/admin-token " +
			"(pick the dir with --data or SWITCHBOARD_DATA); a cluster's admin token is the --admin-token or " +
			"SWITCHBOARD_ADMIN_TOKEN its nodes were started with",
	}
	agentTokenLookup = tokenLookup{
		what: "agent token",
		envs: []string{"SWITCHBOARD_AGENT_TOKEN", "SWITCHBOARD_TOKEN"},
		hint: "'switchboard ctl create agent ID' prints one",
	}
	supervisorTokenLookup = tokenLookup{
		what: "supervisor token",
		// Not SWITCHBOARD_TOKEN: often the admin's, it would be sent
		// as a supervisor's.
		envs: []string{"SWITCHBOARD_SUPERVISOR_TOKEN"},
		hint: "'switchboard ctl create supervisor ID' prints one",
	}
	connectorTokenLookup = tokenLookup{
		what: "connector token",
		envs: []string{"SWITCHBOARD_CONNECTOR_TOKEN", "SWITCHBOARD_TOKEN"},
		hint: "'switchboard ctl create connector ID --channels C' prints one",
	}
)

// order describes the lookup order for help texts.
func (l tokenLookup) order() string {
	parts := []string{"--token", "--token-file"}
	for _, e := range l.envs {
		parts = append(parts, "$"+e)
	}
	if l.file != "" {
		parts = append(parts, "<--data>/"+l.file+" (default ./data/"+l.file+")")
	}
	return strings.Join(parts, ", ")
}

// resolveToken finds the credential in the order of l. When it finds none,
// the error names every place it looked and why each gave nothing.
func (c *connFlags) resolveToken(l tokenLookup) (string, error) {
	if c.token != "" && c.tokenFile != "" {
		return "", fmt.Errorf("%w: give --token or --token-file, not both", errUsage)
	}
	if c.token != "" {
		return c.token, nil
	}
	if c.tokenFile != "" {
		return readTokenFile("--token-file", c.tokenFile)
	}
	looked := []string{"--token (not given)", "--token-file (not given)"}
	for _, e := range l.envs {
		if v := strings.TrimSpace(os.Getenv(e)); v != "" {
			return v, nil
		}
		looked = append(looked, "$"+e+" (not set)")
	}
	if l.file != "" {
		path := filepath.Join(c.data, l.file)
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		_, err := os.Stat(path)
		if !errors.Is(err, fs.ErrNotExist) {
			return readTokenFile(l.what+" file", path)
		}
		looked = append(looked, path+" (no such file)")
	}
	return "", fmt.Errorf("no %s found; looked, in this order, at %s. %s",
		l.what, strings.Join(looked, ", "), strings.ToUpper(l.hint[:1])+l.hint[1:])
}

// readTokenFile reads a credential kept in a file, without surrounding
// white space.
func readTokenFile(what, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("%s: %s is empty", what, path)
	}
	return tok, nil
}
