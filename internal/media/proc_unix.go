//go:build unix

package media

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
//
// With newSession the group is also a session of its own: Linux's
// autogroup scheduling shares the CPU between sessions, so only a tool in
// a session of its own can be made to yield to everything else on the
// machine rather than to reel's threads alone (toBackground).
func killProcessGroupOnCancel(cmd *exec.Cmd, newSession bool) {
	// A session leader leads a process group of its own too, as Setpgid
	// would make it: the kill below reaches it the same way.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: !newSession, Setsid: newSession}
	dieWithReel(cmd.SysProcAttr)
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
