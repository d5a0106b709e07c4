//go:build unix

package probe

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// killProcessGroupOnCancel starts the tool in a process group of its own
// and makes cancellation kill the whole group: killing only the process
// exec started would leave behind anything it forked (a wrapper script's
// child, say), still running and holding the output pipes open.
func killProcessGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
}

// lowerPriority sets the nice value of the process group just started
// (the tool, and anything it forks). Failing to is no reason not to run
// the tool.
func lowerPriority(pid, nice int) {
	_ = syscall.Setpriority(syscall.PRIO_PGRP, pid, nice)
}
