//go:build !linux

package loadtest

import "time"

// Outside Linux the tool does not read CPU and memory figures: the viewers
// scenario reports them as 0 with a note.

func selfCPU() time.Duration                           { return 0 }
func procCPU(int) (time.Duration, bool)                { return 0, false }
func procRSS(int) (int64, bool)                        { return 0, false }
func machineCPU() (busy, total time.Duration, ok bool) { return 0, 0, false }
