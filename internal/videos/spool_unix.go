//go:build linux || darwin || freebsd || netbsd || openbsd

package videos

import (
	"errors"
	"os"
	"syscall"
)

// lockSpool opens the spool directory dir and takes a shared lock on it
// (flock works on a directory, so no lock file shows among the spool's
// files), held until it is closed or the process dies. alone reports that
// the lock could first be taken exclusively: no other live process held it.
func lockSpool(dir string) (f *os.File, alone bool, err error) {
	f, err = os.Open(dir)
	if err != nil {
		return nil, false, err
	}
	fd := int(f.Fd())
	switch err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); {
	case err == nil:
		alone = true
	case errors.Is(err, syscall.EWOULDBLOCK):
	default:
		f.Close()
		return nil, false, err
	}
	// Shared from now on, so that a process starting later sees this one.
	// (Converting drops the exclusive lock first; a process starting in
	// that instant may find itself alone and clean up: this one has no
	// work files yet.)
	if err := syscall.Flock(fd, syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, false, err
	}
	return f, alone, nil
}
