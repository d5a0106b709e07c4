package media

import (
	"errors"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cpuBounded is true where a background run is bounded by the CPU time it
// uses rather than by the clock (see runHeld).
const cpuBounded = true

// dieWithReel has the kernel kill the tool when reel dies, SIGKILL
// included: a tool in a session of its own outlives its parent otherwise,
// burning CPU for nothing and writing its output into the spool after the
// next start has cleared it. (The signal follows the thread that started
// the tool; Go ends a thread only when a goroutine locked to it exits,
// which reel's goroutines that run tools never are.)
func dieWithReel(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }

// Background gives a process just started, the leader of a session of its
// own, only the cores nothing else wants: nice 19 for its group and its
// session's autogroup, then SCHED_IDLE, which its threads and children
// inherit. Transcodes run so (ExecRunner.Lower), with no CPU-time bound.
func Background(pid int) {
	lowerPriority(pid, backgroundNice)
	setAutogroupNice(pid, backgroundNice)
	_ = unix.SchedSetAttr(pid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}, 0)
}

// toBackground puts a tool run just started in the background, so that it
// never takes a core a request wants (decision 0010): the process group
// and the session's autogroup go to nice 19 (each run is a session of its
// own, killProcessGroupOnCancel), then the process to SCHED_IDLE, which
// the threads and children it starts later inherit. Starved, a run may
// take any time on the clock, so it is bounded in CPU time instead
// (RLIMIT_CPU: SIGXCPU at cpu, SIGKILL a second later).
func toBackground(pid int, cpu time.Duration) {
	Background(pid)
	secs := uint64(cpu / time.Second)
	_ = unix.Prlimit(pid, unix.RLIMIT_CPU, &unix.Rlimit{Cur: secs, Max: secs + 1}, nil)
}

// ranOutOfCPU reports whether a background run that failed had used its
// CPU time: killed by SIGXCPU, or (ffmpeg catches SIGXCPU and exits, or
// dies of SIGKILL at the hard limit) showing the limit used, less a margin:
// the kernel signals at a clock tick and rusage rounds, so a run stopped at
// the limit can show a little less than it.
func ranOutOfCPU(ps *os.ProcessState, limit time.Duration) bool {
	if ps == nil {
		return false
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGXCPU {
		return true
	}
	return ps.UserTime()+ps.SystemTime() >= limit*95/100
}

// setAutogroupNice sets the weight of the autogroup of a session leader
// just started. The kernel refuses a process without CAP_SYS_ADMIN more
// than one change in a tenth of a second (EAGAIN), machine-wide, so a
// refused change is tried again a few times. Where the kernel has no
// autogroups the file is missing and there is nothing to do.
func setAutogroupNice(pid, nice int) {
	path := "/proc/" + strconv.Itoa(pid) + "/autogroup"
	for range 5 {
		err := os.WriteFile(path, []byte(strconv.Itoa(nice)), 0)
		if !errors.Is(err, syscall.EAGAIN) {
			return
		}
		time.Sleep(autogroupRetry)
	}
}

// autogroupRetry is how long setAutogroupNice waits after a refusal: the
// kernel's limit is a tenth of a second.
const autogroupRetry = 50 * time.Millisecond
