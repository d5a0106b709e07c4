//go:build !unix

package media

import "os/exec"

// killProcessGroupOnCancel leaves exec's default, killing the process
// alone, where there are no Unix process groups.
func killProcessGroupOnCancel(*exec.Cmd, bool) {}

// lowerPriority does nothing where there are no Unix process groups.
func lowerPriority(int, int) {}
