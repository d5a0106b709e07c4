//go:build !linux

package media

import (
	"os"
	"syscall"
	"time"
)

// cpuBounded is false: only Linux has both SCHED_IDLE and prlimit, so
// elsewhere a background run is bounded by the clock like any other.
const cpuBounded = false

// toBackground runs the tool just started at the lowest priority.
func toBackground(pid int, _ time.Duration) { Background(pid) }

// dieWithReel does nothing: only Linux kills a child with its parent.
func dieWithReel(*syscall.SysProcAttr) {}

// Background runs a process just started at the lowest priority.
func Background(pid int) { lowerPriority(pid, backgroundNice) }

// ranOutOfCPU is false: runs here are not bounded by CPU time.
func ranOutOfCPU(*os.ProcessState, time.Duration) bool { return false }
