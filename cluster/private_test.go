package cluster

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// Everything under the data dir is private to its owner, even when the
// dir existed before as 0755 with a 0644 file in it, and including the
// snapshots raft writes (they hold token hashes and transcripts).
func TestDataDirIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	stray := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(stray, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(stray, 0o644); err != nil {
		t.Fatal(err)
	}
	n := openLeader(t, testConfig(t, dir), NewFSM(nil, nil))
	mustOK(t, propose(t, n, createMRD("chat")))
	if err := n.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	var files int
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %v: others may read it", path, perm)
		}
		if !d.IsDir() {
			files++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 4 { // admin-token, raft.db, the snapshot's meta.json and state.bin
		t.Fatalf("only %d files under the data dir: the snapshot is missing", files)
	}
}
