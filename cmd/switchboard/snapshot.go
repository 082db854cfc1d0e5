package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// snapshotInfo is what `snapshot inspect` reports of a backup or a Raft
// snapshot, offline.
type snapshotInfo struct {
	File    string `json:"file"`
	Format  string `json:"format"`  // what the file is
	Version int    `json:"version"` // the snapshot encoding's version byte
	Index   uint64 `json:"index"`   // the last log index the state reflects
	// Term is the Raft term of the snapshot, known only for a snapshot
	// directory of a data dir (its meta.json): a backup does not record
	// it (0).
	Term         uint64 `json:"term,omitempty"`
	Size         int64  `json:"size"`
	SHA256       string `json:"sha256"` // of the state bytes
	FeatureLevel uint32 `json:"feature_level"`
	Counts       struct {
		MRDs         int `json:"mrds"`
		Channels     int `json:"channels"`
		Agents       int `json:"agents"`
		Connectors   int `json:"connectors"`
		Lists        int `json:"lists"`
		Queues       int `json:"queues"`
		OpenRequests int `json:"open_requests"`
		Requests     int `json:"requests"` // kept, closed ones included
		Sessions     int `json:"sessions"` // clients' idempotency records
		Nodes        int `json:"nodes"`    // the node registry
	} `json:"counts"`
}

func runSnapshot(_ context.Context, args []string, stdout, _ io.Writer) error {
	fset := newFlagSet("snapshot")
	output := registerOutput(fset)
	pos, err := parseAnywhere(fset, args, stdout, snapshotUsage)
	if err != nil {
		return err
	}
	if len(pos) != 2 || pos[0] != "inspect" {
		return fmt.Errorf("%w: %s", errUsage, snapshotUsage)
	}
	info, err := inspectSnapshot(pos[1])
	if err != nil {
		return err
	}
	if *output == outputJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	return info.print(stdout)
}

const snapshotUsage = `usage: switchboard snapshot inspect FILE [-o table|json]

Reads a backup (ctl snapshot save) or a Raft snapshot of a data dir
(data/snapshots/ID, or its state.bin) without a running node, checks that
it decodes, and prints its format version, log index, term (a snapshot
directory only: a backup does not record it), size, SHA-256 checksum,
feature level and what it holds (agents, lists, queues, open requests,
sessions...). Exits non-zero if the file is not a Switchboard snapshot.`

// raftSnapshotMeta is the part of a Raft snapshot's meta.json read here.
type raftSnapshotMeta struct {
	Index uint64
	Term  uint64
}

// inspectSnapshot reads and decodes the snapshot at path: a backup file,
// a Raft snapshot directory or its state.bin.
func inspectSnapshot(path string) (*snapshotInfo, error) {
	info := &snapshotInfo{File: path, Format: "backup (ctl snapshot save)"}
	dataPath := path
	if st, err := os.Stat(path); err != nil {
		return nil, err
	} else if st.IsDir() {
		dataPath = filepath.Join(path, "state.bin")
	}
	metaPath := filepath.Join(filepath.Dir(dataPath), "meta.json")
	if filepath.Base(dataPath) == "state.bin" {
		if b, err := os.ReadFile(metaPath); err == nil {
			var m raftSnapshotMeta
			if err := json.Unmarshal(b, &m); err != nil {
				return nil, fmt.Errorf("%s: %w", metaPath, err)
			}
			info.Format, info.Term = "raft snapshot", m.Term
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	data, err := os.ReadFile(dataPath)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	info.Size, info.SHA256 = int64(len(data)), hex.EncodeToString(sum[:])
	if len(data) > 0 {
		info.Version = int(data[0])
	}
	st, err := fsm.ReadState(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		return nil, fmt.Errorf("%s is not a Switchboard snapshot: %w", dataPath, err)
	}
	info.Index, info.FeatureLevel = st.Index, st.ActiveLevel()
	c := &info.Counts
	c.MRDs, c.Channels, c.Agents, c.Connectors = len(st.MRDs), len(st.Channels), len(st.Agents), len(st.Connectors)
	c.Lists, c.Queues, c.Requests, c.Sessions, c.Nodes = len(st.Lists), len(st.Queues), len(st.Requests), len(st.Sessions), len(st.Nodes)
	for _, r := range st.Requests {
		if r.State != api.StateClosed {
			c.OpenRequests++
		}
	}
	return info, nil
}

func (info *snapshotInfo) print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	term := "unknown (a backup does not record it)"
	if info.Term != 0 {
		term = fmt.Sprint(info.Term)
	}
	c := info.Counts
	for _, row := range [][2]any{
		{"file", info.File},
		{"format", fmt.Sprintf("%s, encoding version %d", info.Format, info.Version)},
		{"index", info.Index},
		{"term", term},
		{"size", fmt.Sprintf("%d bytes", info.Size)},
		{"sha256", info.SHA256},
		{"feature level", info.FeatureLevel},
		{"mrds", c.MRDs},
		{"channels", c.Channels},
		{"agents", c.Agents},
		{"connectors", c.Connectors},
		{"lists", c.Lists},
		{"queues", c.Queues},
		{"open requests", c.OpenRequests},
		{"requests kept", fmt.Sprintf("%d (closed ones included)", c.Requests)},
		{"sessions", c.Sessions},
		{"nodes", c.Nodes},
	} {
		fmt.Fprintf(tw, "%s:\t%v\n", row[0], row[1])
	}
	return tw.Flush()
}
