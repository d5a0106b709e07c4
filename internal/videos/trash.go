package videos

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/page"
)

// restoreStale is how long a restore may sit between its claim and its end.
const restoreStale = 10 * time.Minute

// Trash lists the caller's deleted videos, most recently deleted first,
// with the time each will be purged.
func (s *Service) Trash(ctx context.Context, c authn.Caller, req page.Request) (page.Page[TrashedVideo], error) {
	rs, err := s.store.trash(ctx, c.UserID, req)
	if err != nil {
		return page.Page[TrashedVideo]{}, err
	}
	vs, err := s.views(ctx, rs)
	if err != nil {
		return page.Page[TrashedVideo]{}, err
	}
	items := make([]TrashedVideo, len(rs))
	for i, r := range rs {
		items[i] = TrashedVideo{Video: vs[i], PurgeAt: r.DeletedAt.Add(s.cfg.TrashRetention)}
	}
	p := page.Make(items, req.Limit, func(t TrashedVideo) page.Cursor {
		return page.Cursor{T: micros(*t.DeletedAt), ID: t.ID}
	})
	s.events.RecordOrLog(ctx, s.event(ctx, "FETCH_VIDEOS", outbox.Success, "listed the trash").With("count", len(p.Items)).With("trash", true))
	return p, nil
}

// Delete moves a video to the trash (owner or admin); its bytes stop
// counting toward the quota and its jobs are cancelled. Deleting a video
// already in the trash succeeds and finishes freeing its bytes if an
// earlier attempt could not.
func (s *Service) Delete(ctx context.Context, c authn.Caller, id string) error {
	r, err := s.owned(ctx, c, id)
	if err != nil {
		return err
	}
	if r.Status == StatusProcessing {
		return ErrProcessing
	}
	if r.DeletedAt == nil {
		now := micros(s.now())
		err = s.db.Tx(ctx, func(tx *sql.Tx) error {
			done, err := s.store.trashOne(ctx, tx, id, now)
			if err != nil || !done {
				return err
			}
			e := s.event(ctx, "DELETE_VIDEO", outbox.Success, "moved video "+quote(r.Title)+" to the trash").On(id).
				With("owner_id", r.OwnerID).With("size_bytes", r.SizeBytes)
			return s.events.Add(ctx, tx, e)
		})
		s.changed(id)
		if err != nil {
			return fmt.Errorf("delete video: %w", err)
		}
		s.cancelVideoJobs(ctx, id)
		if r, err = s.store.video(ctx, s.db.W, id); err != nil {
			return fmt.Errorf("delete video: %w", err)
		}
	}
	if r.QuotaState == quotaFreeing {
		return s.free(ctx, r)
	}
	return nil
}

// DeleteAll moves all the caller's videos to the trash and reports how
// many went.
func (s *Service) DeleteAll(ctx context.Context, c authn.Caller) (int, error) {
	var trashed []record
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if trashed, err = s.store.trashAll(ctx, tx, c.UserID, micros(s.now())); err != nil {
			return err
		}
		e := s.event(ctx, "DELETE_ALL_VIDEOS", outbox.Success, fmt.Sprintf("moved all %d videos to the trash", len(trashed))).
			On(c.UserID).With("count", len(trashed))
		return s.events.Add(ctx, tx, e)
	})
	// Forgotten even on an error: the commit may have happened.
	s.changed()
	if err != nil {
		return 0, fmt.Errorf("delete all videos: %w", err)
	}
	ids := make([]string, len(trashed))
	for i, r := range trashed {
		ids[i] = r.ID
	}
	s.cancelVideoJobs(ctx, ids...)
	var firstErr error
	for _, r := range trashed {
		if r.QuotaState != quotaFreeing {
			continue
		}
		if err := s.free(ctx, r); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return len(trashed), firstErr
}

// free gives a trashed video's bytes back to its owner's quota, then marks
// it free. Free is idempotent per object, so a retry after a failure in
// between frees nothing twice.
func (s *Service) free(ctx context.Context, r record) error {
	if err := s.loadFiles(ctx, &r); err != nil {
		return fmt.Errorf("free video bytes: %w", err)
	}
	for _, key := range r.objects() {
		if _, err := s.quota.Free(ctx, r.OwnerID, key); err != nil {
			return fmt.Errorf("free video bytes: %w", err)
		}
	}
	if _, err := s.store.setQuotaState(ctx, s.db.W, r.ID, quotaFreeing, quotaFree, micros(s.now())); err != nil {
		return fmt.Errorf("free video bytes: %w", err)
	}
	return nil
}

// charge is a stored object of a video and its bytes.
type charge struct {
	key   string
	bytes int64
}

// charges are the objects a video counts toward its owner's quota: its
// bytes, its poster and the files derived from it (renditions, playlists,
// storyboard), which must be loaded (loadFiles).
func (r record) charges() []charge {
	out := []charge{{r.VideoKey, r.SizeBytes}}
	if r.PosterKey != "" {
		out = append(out, charge{r.PosterKey, r.PosterBytes})
	}
	for _, f := range r.Files {
		out = append(out, charge{f.Key, f.Bytes})
	}
	return out
}

func (r record) objects() []string {
	cs := r.charges()
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = c.key
	}
	return keys
}

// loadFiles reads the derived files of r unless they are loaded; it reads
// the writer's view, so that files recorded just before a trash are seen.
func (s *Service) loadFiles(ctx context.Context, r *record) error {
	if r.Files != nil {
		return nil
	}
	rs := []record{*r}
	if err := s.store.withFiles(ctx, s.db.W, rs); err != nil {
		return err
	}
	r.Files = rs[0].Files
	return nil
}

// Restore takes a video out of the trash (owner or admin), charging its
// bytes to the owner's quota again: quota_exceeded (413) when they no
// longer fit. The jobs its trash cancelled are enqueued again. Restoring
// a video that is not in the trash returns it.
func (s *Service) Restore(ctx context.Context, c authn.Caller, id string) (Video, error) {
	r, err := s.owned(ctx, c, id)
	if err != nil {
		return Video{}, err
	}
	if r.DeletedAt == nil {
		return s.view(ctx, r)
	}
	if r.PurgingAt.Valid {
		return Video{}, ErrVideoNotFound
	}
	if err := s.loadFiles(ctx, &r); err != nil {
		return Video{}, fmt.Errorf("restore video: %w", err)
	}
	if r.QuotaState == quotaFreeing {
		// An earlier delete could not give the bytes back yet: do it now,
		// so that the new reservation is not counted on top of them.
		if err := s.free(ctx, r); err != nil {
			return Video{}, err
		}
	}
	now := micros(s.now())
	if r.Status == StatusFailed {
		// A failed video holds no bytes: nothing to charge.
		done, err := s.store.restore(ctx, s.db.W, id, quotaFree, quotaFree, now)
		if err != nil {
			return Video{}, fmt.Errorf("restore video: %w", err)
		}
		if !done {
			return Video{}, ErrRestoreBusy
		}
		return s.restored(ctx, id)
	}
	// Read before the claim, which a failure here then need not undo.
	plan, err := s.planFair(ctx, r.OwnerID)
	if err != nil {
		return Video{}, fmt.Errorf("restore video: %w", err)
	}
	// The claim is a lease, renewed while the restore runs, as a
	// finalising upload's row is: a restore killed half-way is undone by
	// the maintenance job a lease later (maintenance.go).
	claimed, err := s.store.claimRestore(ctx, s.db.W, id, now, micros(s.now().Add(s.cfg.ReserveLease)))
	if err != nil {
		return Video{}, fmt.Errorf("restore video: %w", err)
	}
	if !claimed {
		return Video{}, ErrRestoreBusy
	}
	defer s.keepAlive(s.rowLease(id, s.store.renewRestore))()
	if err := s.recharge(ctx, r); err != nil {
		// Give the claim back; the bytes were not (or are no longer)
		// charged.
		cctx, cancel := detached(ctx)
		defer cancel()
		if _, uerr := s.store.setQuotaState(cctx, s.db.W, id, quotaCharging, quotaFree, micros(s.now())); uerr != nil {
			s.log.Warn("unclaim restore", "video", id, "err", uerr)
		}
		return Video{}, err
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		done, err := s.store.restore(ctx, tx, id, quotaCharging, quotaCharged, micros(s.now()))
		if err != nil {
			return err
		}
		if !done {
			return errors.New("the restore claim was lost")
		}
		e := s.event(ctx, "RESTORE_VIDEO", outbox.Success, "restored video "+quote(r.Title)+" from the trash").On(id).
			With("owner_id", r.OwnerID).With("size_bytes", r.SizeBytes)
		if err := s.events.Add(ctx, tx, e); err != nil {
			return err
		}
		return s.requeueTx(ctx, tx, r, plan)
	})
	if err != nil {
		cctx, cancel := detached(ctx)
		defer cancel()
		// Undo the charge; the maintenance job retries if this fails.
		for _, key := range r.objects() {
			if _, ferr := s.quota.Free(cctx, r.OwnerID, key); ferr != nil {
				s.log.Warn("undo restore charge", "video", id, "err", ferr)
				return Video{}, fmt.Errorf("restore video: %w", err)
			}
		}
		_, _ = s.store.setQuotaState(cctx, s.db.W, id, quotaCharging, quotaFree, micros(s.now()))
		return Video{}, fmt.Errorf("restore video: %w", err)
	}
	return s.restored(ctx, id)
}

func (s *Service) restored(ctx context.Context, id string) (Video, error) {
	s.changed(id)
	r, err := s.store.video(ctx, s.db.W, id)
	if err != nil {
		return Video{}, fmt.Errorf("restore video: %w", err)
	}
	return s.view(ctx, r)
}

// recharge reserves and commits a video's objects against its owner's
// quota, one reservation per object so each commits into its own object.
// On failure it releases what it reserved and frees what it committed.
func (s *Service) recharge(ctx context.Context, r record) error {
	type part struct {
		charge
		res string
	}
	var parts []part
	for _, c := range r.charges() {
		parts = append(parts, part{charge: c})
	}
	undo := func(upTo int, committed bool) {
		cctx, cancel := detached(ctx)
		defer cancel()
		for i := 0; i < upTo; i++ {
			s.release(cctx, "release restore reservation", parts[i].res, s.quota.Release)
			if committed {
				if _, err := s.quota.Free(cctx, r.OwnerID, parts[i].key); err != nil {
					s.log.Warn("free restore charge", "video", r.ID, "err", err)
				}
			}
		}
	}
	// The holds are leases too (lease.go), renewed until they are
	// committed.
	var holds []leaseHold
	for i := range parts {
		h, err := s.quota.Reserve(ctx, r.OwnerID, parts[i].bytes, s.cfg.ReserveLease)
		parts[i].res = h.ID
		if err != nil {
			// An answer lost may have left this one made (Quota.Reserve).
			undo(i+1, false)
			return fmt.Errorf("restore video: %w", err)
		}
		holds = append(holds, leaseHold{h.ID, s.quota.Renew})
	}
	defer s.keepAlive(holds...)()
	for i := range parts {
		if err := s.quota.Commit(ctx, parts[i].res, parts[i].bytes, parts[i].key); err != nil {
			undo(len(parts), true)
			return fmt.Errorf("restore video: %w", err)
		}
	}
	return nil
}

// Purge deletes the blobs and rows of videos that have been in the trash
// longer than the retention, recording PURGE_VIDEO for each. Each video is
// marked before its blobs are deleted and removed after, so a purge
// interrupted half-way is finished by the next run; its bytes were freed
// when it went to the trash, so a purge frees nothing. It returns how many
// videos it purged.
func (s *Service) Purge(ctx context.Context) (int, error) {
	cutoff := micros(s.now().Add(-s.cfg.TrashRetention))
	n := 0
	for {
		rs, err := s.store.purgeable(ctx, cutoff, maintenanceBatch)
		if err != nil {
			return n, fmt.Errorf("purge: %w", err)
		}
		progressed := false
		for _, r := range rs {
			done, err := s.purgeOne(ctx, r, cutoff)
			if err != nil {
				return n, fmt.Errorf("purge video %s: %w", r.ID, err)
			}
			if done {
				n++
				progressed = true
			}
		}
		if len(rs) < maintenanceBatch || !progressed {
			return n, nil
		}
	}
}

func (s *Service) purgeOne(ctx context.Context, r record, cutoff int64) (bool, error) {
	marked, err := s.store.markPurging(ctx, s.db.W, r.ID, cutoff, micros(s.now()))
	s.changed(r.ID)
	if err != nil || !marked {
		return false, err // restored meanwhile, or an error
	}
	if err := s.loadFiles(ctx, &r); err != nil {
		return false, err
	}
	for _, key := range append(r.objects(), blobKey(r.ID, PosterFile)) {
		if err := s.blobs.Delete(ctx, key); err != nil {
			return false, fmt.Errorf("delete blob: %w", err)
		}
	}
	_ = os.Remove(s.posterSource(r.ID)) // a poster still to cut when trashed
	var deleted bool
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if deleted, err = s.store.deletePurged(ctx, tx, r.ID); err != nil || !deleted {
			return err
		}
		e := s.event(ctx, "PURGE_VIDEO", outbox.Success, "purged video "+quote(r.Title)+" from the trash").
			ForUser(r.OwnerID).On(r.ID).With("size_bytes", r.SizeBytes).With("deleted_at", r.DeletedAt.Format(time.RFC3339))
		return s.events.Add(ctx, tx, e)
	})
	return deleted, err
}
