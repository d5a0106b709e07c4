//go:build unix

package blob

import (
	"io/fs"
	"os"
	"syscall"
)

func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino) //nolint:unconvert // Ino is not uint64 everywhere
	}
	return 0
}

// openRead opens a file for reading without registering it with the
// network poller: os.Open tries (making the file non-blocking, failing to
// add a regular file to epoll and making it blocking again), which is four
// system calls more than the open itself on every media request. A regular
// file never blocks in the poller's sense, so nothing is lost; sendfile
// still reaches it through SyscallConn.
func openRead(path string) (*os.File, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}
