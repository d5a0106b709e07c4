//go:build unix

package loadtest

import "syscall"

// openFileLimit returns the process's limit on open files (Go raises the
// soft limit to the hard one at start-up on Linux), or false when unknown.
func openFileLimit() (uint64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false
	}
	return rl.Cur, true
}
