//go:build !unix

package media

import "os/exec"

// killGroupOnCancel leaves exec's default, killing the process alone,
// where there are no Unix process groups.
func killGroupOnCancel(*exec.Cmd, bool) {}
