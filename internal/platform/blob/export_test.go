package blob

// SetRename replaces the rename Disk uses and returns a function that
// restores it.
func SetRename(f func(from, to string) error) (restore func()) {
	old := renameFile
	renameFile = f
	return func() { renameFile = old }
}
