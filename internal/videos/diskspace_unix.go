//go:build linux || darwin || freebsd || netbsd || openbsd

package videos

import "syscall"

// diskSpace reports the bytes free (to an unprivileged user) and the size
// of the file system holding dir.
func diskSpace(dir string) (free, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	bs := uint64(st.Bsize) // int64 on Linux, uint32 elsewhere
	return uint64(st.Bavail) * bs, uint64(st.Blocks) * bs, nil
}
