package cluster

import (
	"os"

	"golang.org/x/sys/unix"
)

const writebackSupported = true

// writeOut starts writing the file's range [off, off+n) to the disk, and
// with wait waits until it is written (sync_file_range(2): it neither
// flushes the disk's cache nor commits metadata; the sink's fsync does).
func writeOut(f *os.File, off, n int64, wait bool) error {
	flags := unix.SYNC_FILE_RANGE_WRITE
	if wait {
		flags |= unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WAIT_AFTER
	}
	return unix.SyncFileRange(int(f.Fd()), off, n, flags)
}
