package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/reel-video/reel/internal/backup"
)

// backupCmd runs `reel backup DEST` and `reel restore SRC`: the directory
// comes first, the usual settings (REEL_* or flags) after it say where the
// data is or goes.
func backupCmd(ctx context.Context, cmd string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if cmd == "backup" {
			return errors.New("usage: reel backup DEST [flags]: DEST is a new or empty directory")
		}
		return errors.New("usage: reel restore SRC [flags]: SRC is a directory written by reel backup")
	}
	dir := args[0]
	cfg, _, err := load(cmd, args[1:], getenv, stdout, stderr)
	if err != nil {
		return err
	}
	if cmd == "backup" {
		s, err := backup.Backup(ctx, cfg, dir, buildVersion())
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		fmt.Fprintf(stdout, "backed up %s and %s (%s) to %s\n", plural(s.Databases, "database"), plural(s.Blobs, "blob"), mib(s.Bytes), dir)
		if s.Linked > 0 {
			fmt.Fprintf(stdout, "%s hard-linked, sharing their disk with the data: copy %s to another disk to keep it from a disk failure\n", plural(s.Linked, "blob"), dir)
		}
		return nil
	}
	s, err := backup.Restore(ctx, cfg, dir)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintf(stdout, "restored %s and %s (%s) into %s; start reel with the same settings\n", plural(s.Databases, "database"), plural(s.Blobs, "blob"), mib(s.Bytes), cfg.DataDir)
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
