//go:build !linux

package cluster

import "os"

// Elsewhere the snapshot is written out by the sink's fsync alone.
const writebackSupported = false

func writeOut(*os.File, int64, int64, bool) error { return nil }
