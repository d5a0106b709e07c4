//go:build !unix

package loadtest

func openFileLimit() (uint64, bool) { return 0, false }
