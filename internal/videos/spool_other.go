//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package videos

import (
	"errors"
	"os"
)

// lockSpool cannot tell here whether another process uses the spool: the
// daily sweep removes leftovers instead.
func lockSpool(string) (*os.File, bool, error) {
	return nil, false, errors.New("spool lock: not supported on this system")
}
