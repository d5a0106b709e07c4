//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package videos

import "errors"

// diskSpace is unknown here: poster sources are kept whatever the space.
func diskSpace(string) (free, total uint64, err error) {
	return 0, 0, errors.New("disk space: not supported on this system")
}
