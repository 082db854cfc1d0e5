//go:build !linux

package cluster

import (
	"os/exec"
	"runtime"
)

// childAttrs: only Linux kills a child with its parent; elsewhere a child
// left behind ends when its input closes.
func childAttrs(*exec.Cmd) {}

// lowerPriority: best effort, Linux only.
func lowerPriority(int) {}

// lowerOwnPriority: one core at most; priorities are Linux only.
func lowerOwnPriority() { runtime.GOMAXPROCS(1) }
