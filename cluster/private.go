package cluster

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// The data dir holds token hashes, transcripts and the log: only its owner
// may read it, whatever modes it had before (an operator's mkdir, an older
// build) and whatever modes the libraries writing into it choose (raft's
// FileSnapshotStore makes its directories 0755 and its files 0644).

// privateTree makes root and every directory under it 0700 and every file
// 0600, changing only what is more open than that.
func privateTree(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil // never follow a link out of the data dir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm()&^want != 0 {
			if err := os.Chmod(path, info.Mode().Perm()&want); err != nil {
				return fmt.Errorf("cluster: make %s private: %w", path, err)
			}
		}
		return nil
	})
}

// privateSnapshots is the file snapshot store with every snapshot made
// private once written.
type privateSnapshots struct {
	*raft.FileSnapshotStore
	dir string // the snapshots directory
}

// Create implements raft.SnapshotStore.
func (p *privateSnapshots) Create(version raft.SnapshotVersion, index, term uint64,
	configuration raft.Configuration, configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := p.FileSnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	return withWriteback(&privateSink{SnapshotSink: sink, dir: p.dir}, p.dir), nil // writeback.go
}

// privateSink makes the snapshot's files private when it is closed.
type privateSink struct {
	raft.SnapshotSink
	dir string
}

// Close finishes the snapshot, then restricts its files to the owner.
func (s *privateSink) Close() error {
	if err := s.SnapshotSink.Close(); err != nil {
		return err
	}
	return privateTree(s.dir)
}
