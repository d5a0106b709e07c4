package probe

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

// toBackground puts a tool run just started in the background: it gets a
// core only when nothing else wants one, and it is killed once it has used
// cpu of CPU time.
//
// SCHED_IDLE rather than a nice value: even at nice 19 ffmpeg takes a
// share of a busy core and, worse, the scheduler counts its core as busy
// when it places a waking thread, so a request waits behind a poster. A
// SCHED_IDLE thread is preempted at once by any other and its core counts
// as idle (1000-user mix on 2 cores, SQLite, November 27: worst read p99
// 96–187 ms in two runs at nice 10, 51–110 ms in six at SCHED_IDLE).
//
// The policy is set on the process just started, before it has loaded its
// libraries: every thread it starts later inherits it, as does anything it
// forks later. The whole process group goes to nice 19 first, so that
// anything forked before (ffmpeg forks nothing; a wrapper script might)
// still yields to reel.
//
// SCHED_IDLE yields only within the run's scheduling group, though, and
// where autogroup scheduling is on (the default of most distributions'
// kernels) the CPU is first shared between sessions: between reel's
// session, and each PostgreSQL backend, a session of its own. A run in
// reel's session yields to reel's threads but takes its session's full
// share from the PostgreSQL backends that reel waits for. So the run has
// a session of its own (killProcessGroupOnCancel), whose weight goes to
// nice 19 too (/proc/PID/autogroup).
//
// Starved of CPU, such a run can take any time on the clock, hence the
// bound in CPU time (RLIMIT_CPU: SIGXCPU at cpu, SIGKILL a second
// later; cpu is in whole seconds, cpuLimit). Where SCHED_IDLE is refused
// the run goes on at nice 19; where RLIMIT_CPU is, only the clock (ten
// timeouts) bounds it.
func toBackground(pid int, cpu time.Duration) {
	lowerPriority(pid, backgroundNice)
	setAutogroupNice(pid, backgroundNice)
	_ = unix.SchedSetAttr(pid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}, 0)
	secs := uint64(cpu / time.Second)
	_ = unix.Prlimit(pid, unix.RLIMIT_CPU, &unix.Rlimit{Cur: secs, Max: secs + 1}, nil)
}

// ranOutOfCPU reports whether a background run that failed had used its
// CPU time: killed by SIGXCPU, or (ffmpeg catches SIGXCPU and exits, or
// dies of SIGKILL at the hard limit) showing the limit used, less a margin:
// the kernel signals at a clock tick and rusage rounds, so a run stopped at
// the limit can show a little less than it (994 ms of 1 s).
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
