package videos

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reel-video/reel/internal/media"
)

// The spool (Config.SpoolDir) holds files of work running in this
// process: multipart uploads arriving (upload-*), renditions being encoded
// and their sources (upload-<id>-<salt>-*), posters being cut
// (reel-poster-*); and poster sources (upload-<id>.poster-source), which a
// queued poster job reads after the upload's request has ended.
//
// Recovery at start: every process holds a shared lock on the spool
// directory for as long as it lives (the kernel drops it when the process
// dies, SIGKILL included). A process that starts and gets the lock
// exclusively is the spool's only live user, so no live request or job
// holds any work file in it: it removes them all, before it serves. Poster
// sources stay: a job queued in the database still wants them (it reads
// the stored video when its source is gone), and the job removes them, or
// the daily sweep a day on. A process that shares the spool with another
// live one (two processes on one data directory) removes nothing at
// start; the daily sweep (removeStaleSpool) then takes what is a day old.

// recoverSpool takes the spool's lock and, if this process is its only
// user, removes the work files a dead process left. It keeps the directory
// open in s, locked, for the process's life.
func (s *Service) recoverSpool() {
	f, alone, err := lockSpool(s.cfg.SpoolDir)
	if err != nil {
		s.log.Warn("lock the spool directory; leftovers are removed after a day", "dir", s.cfg.SpoolDir, "err", err)
		return
	}
	s.spoolLock = f
	if !alone {
		s.log.Info("another live process uses the spool directory; leftovers are removed after a day", "dir", s.cfg.SpoolDir)
		return
	}
	entries, err := os.ReadDir(s.cfg.SpoolDir)
	if err != nil {
		return
	}
	n := 0
	for _, e := range entries {
		if !workFile(e.Name()) {
			continue
		}
		if err := os.Remove(filepath.Join(s.cfg.SpoolDir, e.Name())); err == nil {
			n++
		}
	}
	if n > 0 {
		s.log.Info("removed spool files left by a process that is gone", "count", n)
	}
}

// Close releases the spool directory's lock (recoverSpool): call it when
// the process stops serving. The lock must not rest on the Service staying
// reachable: the garbage collector closes an unreachable *os.File, and with
// it the lock another process's start relies on.
func (s *Service) Close() error {
	if s.spoolLock == nil {
		return nil
	}
	err := s.spoolLock.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}

// workFile reports whether a spool file is the work of a live request or
// job (removed at start by the spool's only user), not a poster source.
func workFile(name string) bool {
	if strings.HasPrefix(name, media.PosterPrefix) {
		return true
	}
	return strings.HasPrefix(name, "upload-") && !strings.HasSuffix(name, posterSourceSuffix)
}

// removeStaleSpool deletes spool files left a day ago or more: the
// backstop for a spool shared with another live process, and for poster
// sources whose job never came.
func (s *Service) removeStaleSpool() {
	entries, err := os.ReadDir(s.cfg.SpoolDir)
	if err != nil {
		return
	}
	before := s.now().Add(-24 * time.Hour)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "upload-") && !strings.HasPrefix(e.Name(), media.PosterPrefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(before) {
			_ = os.Remove(filepath.Join(s.cfg.SpoolDir, e.Name()))
		}
	}
}
