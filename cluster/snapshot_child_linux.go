package cluster

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
)

// childAttrs makes a rebuild child die with the node.
func childAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// lowerPriority gives process pid's main thread the lowest CPU priority
// (nice 19). Best effort; on Linux a nice value is a thread's, so the
// child lowers its other threads itself (lowerOwnPriority).
func lowerPriority(pid int) {
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, pid, 19)
}

// lowerOwnPriority makes this process (a rebuild child) run on one core
// at most and gives every one of its threads nice 19: the Go runtime has
// started several before the child's code runs, and a thread created
// later takes its creator's value. Twice, for a thread created while the
// first pass ran. Best effort.
func lowerOwnPriority() {
	runtime.GOMAXPROCS(1)
	for range 2 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return
		}
		for _, t := range tasks {
			if tid, err := strconv.Atoi(t.Name()); err == nil {
				_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, 19)
			}
		}
	}
}
