//go:build !unix

package blob

import (
	"io/fs"
	"os"
)

func inode(fs.FileInfo) uint64 { return 0 }

func openRead(path string) (*os.File, error) { return os.Open(path) }
