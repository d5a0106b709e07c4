package videos

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/reel-video/reel/internal/platform/errs"
)

// Files derived from a video (posters, renditions, playlists, storyboards)
// are stored and charged one way: storeCharged.

// errNoRoom is storeCharged's refusal: the owner's quota has no room for
// the files. Nothing of them is left stored or charged.
var errNoRoom = errors.New("no room in the storage quota")

// errCharging marks storeCharged's failures to reach the quota (free,
// reserve, commit), as against storing the files, for the job messages
// that tell the two apart.
var errCharging = errors.New("charging the storage quota failed")

// storeCharged stores local files as blobs under their keys and charges
// them to owner's quota like any stored byte: all reserved first, so that
// a quota without room for all of them refuses before anything is stored
// (errNoRoom) and a tight quota is never overshot; then each stored and
// its reservation committed into its key. On any failure it gives back
// what it stored and charged, and returns the error.
//
// freeFirst frees the keys before charging them: an attempt that died
// after charging a key left that charge, and Commit adds to an object
// (Free is idempotent, so a key never charged frees nothing). A first
// attempt that knows it is one spares the storage service the calls.
//
// A disk store takes the files by a rename (putFile), so they may be gone
// afterwards; the caller removes whatever is left.
func (s *Service) storeCharged(ctx context.Context, owner string, files []*derivedFile, freeFirst bool) (err error) {
	for _, f := range files {
		fi, err := os.Stat(f.path)
		if err != nil {
			return fmt.Errorf("store %s: %w", f.Name, err)
		}
		f.Bytes = fi.Size()
	}
	if freeFirst {
		for _, f := range files {
			if _, err := s.quota.Free(ctx, owner, f.Key); err != nil {
				return fmt.Errorf("free an earlier charge of %s: %w (%w)", f.Name, err, errCharging)
			}
		}
	}
	holds := make([]string, 0, len(files))
	stored := 0
	defer func() {
		if err == nil {
			return
		}
		cctx, cancel := detached(ctx)
		defer cancel()
		for _, h := range holds { // Release is idempotent: a committed one is left as it is
			s.release(cctx, "release a derived file's reservation", h, s.quota.Release)
		}
		s.giveBack(cctx, owner, files[:stored])
	}()
	for _, f := range files {
		h, err := s.quota.Reserve(ctx, owner, f.Bytes, s.cfg.ReserveLease)
		if h.ID != "" {
			// Released on failure, even when the answer was lost
			// (Quota.Reserve).
			holds = append(holds, h.ID)
		}
		if errs.KindOf(err) == errs.TooLarge {
			return errNoRoom
		}
		if err != nil {
			return fmt.Errorf("reserve storage for %s: %w (%w)", f.Name, err, errCharging)
		}
	}
	leased := make([]leaseHold, len(holds))
	for i, h := range holds {
		leased[i] = leaseHold{h, s.quota.Renew}
	}
	defer s.keepAlive(leased...)()
	for i, f := range files {
		if err := s.putFile(ctx, f.Key, f.path, f.Bytes, f.ContentType); err != nil {
			return fmt.Errorf("store %s: %w", f.Name, err)
		}
		stored = i + 1
		err := s.quota.Commit(ctx, holds[i], f.Bytes, f.Key)
		if errs.KindOf(err) == errs.TooLarge {
			// The reservation lapsed and the quota has no room now.
			return errNoRoom
		}
		if err != nil {
			return fmt.Errorf("commit storage for %s: %w (%w)", f.Name, err, errCharging)
		}
	}
	return nil
}

// giveBack stops charging derived files and deletes their blobs, in the
// background again if the storage service or the blob store is down.
func (s *Service) giveBack(ctx context.Context, owner string, files []*derivedFile) {
	if len(files) == 0 {
		return
	}
	keys := make([]string, len(files))
	for i, f := range files {
		keys[i] = f.Key
	}
	ctx, cancel := detached(ctx)
	defer cancel()
	s.cleanUp(ctx, "give back derived files", []any{"keys", keys}, func(ctx context.Context) error {
		for _, k := range keys {
			if _, err := s.quota.Free(ctx, owner, k); err != nil {
				return err
			}
			if err := s.blobs.Delete(ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
}

// spoolBytes writes b to a new file in the spool directory and returns its
// path.
func (s *Service) spoolBytes(b []byte) (string, error) {
	f, err := s.spoolFile()
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("spool: %w", err)
	}
	return f.Name(), nil
}
