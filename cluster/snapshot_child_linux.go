package cluster

import (
	"os/exec"
	"syscall"
)

// childAttrs makes a rebuild child die with the node.
func childAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// lowerPriority gives process pid the lowest CPU priority (nice 19): the
// node's own threads come first whenever they want a core. Best effort.
func lowerPriority(pid int) {
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, pid, 19)
}
