package videos

import (
	"context"
	"errors"

	"github.com/reel-video/reel/internal/platform/errs"
)

// The day's upload volume. Finalise commits a video's size to the
// reservation its upload held only once the video is ready (usage cannot
// give volume back, so an upload that fails must leave it uncounted). That
// commit is a call to another service after the ready transaction, so the
// transaction records it as owed (videos.volume_res) and the call clears
// it: a process killed in between, or a usage service that is down, leaves
// it to the maintenance job, which commits it again. The commit is
// idempotent by reservation and size, so counting twice cannot happen.

// errNoLimit is a process that cannot reach the usage service (a
// transcode process without its URL): another process settles the volume.
var errNoLimit = errors.New("no usage service to commit upload volume to")

// settleVolume commits size to the daily-upload reservation res and
// clears what video id owed. A refusal that no retry can change (the
// reservation forgotten, settled otherwise, or lapsed with no room left
// today) is logged and the debt dropped; any other error leaves it owed.
func (s *Service) settleVolume(ctx context.Context, id, res string, size int64) error {
	if s.limit == nil {
		return errNoLimit
	}
	err := s.limit.CommitUpload(ctx, res, size)
	switch errs.KindOf(err) {
	case errs.NotFound, errs.Conflict, errs.RateLimited, errs.Invalid, errs.Validation:
		s.log.Warn("an upload's daily volume could not be counted", "video", id, "reservation", res, "bytes", size, "err", err)
	default:
		if err != nil {
			return err
		}
	}
	return s.store.volumeCounted(ctx, s.db.W, id, res)
}

// settleVolumes commits the upload volume ready videos still owe (the
// maintenance job's part).
func (s *Service) settleVolumes(ctx context.Context) error {
	if s.limit == nil {
		return nil
	}
	due, err := s.store.volumesDue(ctx, maintenanceBatch)
	if err != nil {
		return err
	}
	var errsOut []error
	for _, v := range due {
		if err := s.settleVolume(ctx, v.ID, v.Res, v.Size); err != nil {
			errsOut = append(errsOut, err)
		}
	}
	return errors.Join(errsOut...)
}
