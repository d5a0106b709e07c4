package blob

import (
	"os"
	"time"
)

// SetRename replaces the rename Disk uses and returns a function that
// restores it.
func SetRename(f func(from, to string) error) (restore func()) {
	old := renameFile
	renameFile = f
	return func() { renameFile = old }
}

// OpenFile is the *os.File under a disk object, to tell whether two
// objects share one.
func OpenFile(o Object) *os.File { return o.(*DiskObject).h.f }

// IdleFiles is how many files d keeps open for the next reader.
func IdleFiles(d *Disk) int {
	d.handles.mu.Lock()
	defer d.handles.mu.Unlock()
	return d.handles.idle
}

// SetClock makes d's file pool tell time by now.
func SetClock(d *Disk, now func() time.Time) {
	d.handles.mu.Lock()
	defer d.handles.mu.Unlock()
	d.handles.now = now
}

// SweepFiles closes the idle files past their time, as the pool's timer does.
func SweepFiles(d *Disk) { d.handles.sweep() }

// MaxIdleFiles is the pool's bound on idle files.
const MaxIdleFiles = maxIdleHandles
