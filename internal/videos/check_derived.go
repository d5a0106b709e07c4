package videos

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/reel-video/reel/internal/platform/sqldb"
)

// The check's repair of a derived file (poster, rendition, storyboard)
// that is missing or stored with another size: its set (the files one
// job makes together) is dropped from the video's record, its charges
// freed and its remaining blobs deleted, and the job that makes it is
// enqueued again. The video stays playable from its source meanwhile:
// /media and the master playlist are built from the records (a rung
// whose files are not both recorded is not in the master).
//
// Only a video whose own bytes are there, with their size, is repaired:
// the jobs make the files from them, and a blob store that lost
// everything (or is misconfigured) should not have every video's files
// dropped and their jobs fail.
//
// The repairs run after the ledger step, so that its correction sees the
// records as they were and the repair's Free then takes exactly the
// set's charges off the ledger; a job that stores the files again charges
// them anew. The charges are freed and the blobs deleted before the
// records change and the job is enqueued (in one transaction), so that a
// job never has its fresh files freed or deleted by the repair.

// derivedSet is the set of derived files of a video that one job makes.
type derivedSet struct {
	r     record
	name  string   // "poster", "rendition 360", "storyboard"
	kind  string   // the job that makes it
	keys  []string // the blob keys the video records for it
	files []string // their names in video_files (none for the poster)
	// height is the rendition's pixel height.
	height int
	// findings are its findings' indexes in the report.
	findings []int
}

// setOf returns the derived set of r that holds key, false for the
// video's own bytes or a key r does not record.
func setOf(r record, key string) (derivedSet, bool) {
	if key == r.VideoKey {
		return derivedSet{}, false
	}
	if key == r.PosterKey {
		return derivedSet{r: r, name: "poster", kind: KindPoster, keys: []string{key}}, true
	}
	i := slices.IndexFunc(r.Files, func(f derivedFile) bool { return f.Key == key })
	if i < 0 {
		return derivedSet{}, false
	}
	name := r.Files[i].Name
	set := derivedSet{r: r}
	var members []string
	switch base, ext, _ := strings.Cut(name, "."); {
	case name == StoryboardFile || name == StoryboardSprite:
		set.name, set.kind, members = "storyboard", KindStoryboard, []string{StoryboardSprite, StoryboardFile}
	case ext == "mp4" || ext == "m3u8":
		h, err := strconv.Atoi(base)
		if err != nil || h <= 0 {
			return derivedSet{}, false
		}
		set.name, set.kind, set.height = "rendition "+base, KindTranscode, h
		members = []string{renditionFile(h, ".mp4"), renditionFile(h, ".m3u8")}
	default:
		return derivedSet{}, false
	}
	for _, f := range r.Files {
		if slices.Contains(members, f.Name) {
			set.keys = append(set.keys, f.Key)
			set.files = append(set.files, f.Name)
		}
	}
	return set, true
}

// planRepair notes that the finding at index i, a derived file of r that
// is missing or resized, is to be repaired with its set.
//
// A video changed within the grace period, or whose ladder is being made,
// is left for a later check: a job of its own may be at work on it.
func (c *checker) planRepair(r record, key string, i int) {
	set, ok := setOf(r, key)
	if !ok || !c.settled(r) || (set.kind == KindTranscode && r.StreamingState == streamingRunning) {
		return
	}
	id := r.ID + "/" + set.name
	if p := c.repairs[id]; p != nil {
		p.findings = append(p.findings, i)
		return
	}
	set.findings = []int{i}
	c.repairs[id] = &set
	c.repairOrder = append(c.repairOrder, id)
}

// repair runs the repairs planned.
func (c *checker) repair(ctx context.Context) error {
	for _, id := range c.repairOrder {
		set := c.repairs[id]
		ok, err := c.s.remake(ctx, set)
		if err != nil {
			return err
		}
		for _, i := range set.findings {
			c.rep.Findings[i].Fixed = ok
		}
	}
	return nil
}

// remake drops a derived set from its video and enqueues its job again;
// false when the video changed since the check read it (the next check
// looks again).
func (s *Service) remake(ctx context.Context, set *derivedSet) (bool, error) {
	now, err := s.store.video(ctx, s.db.W, set.r.ID)
	if err != nil && !errors.Is(err, ErrVideoNotFound) {
		return false, err
	}
	if err != nil || now.Status != StatusReady || now.PurgingAt.Valid {
		return false, nil
	}
	if err := s.loadFiles(ctx, &now); err != nil {
		return false, err
	}
	if set.kind == KindTranscode && now.StreamingState != set.r.StreamingState {
		return false, nil
	}
	if again, ok := setOf(now, set.keys[0]); !ok || !slices.Equal(set.charges(), again.charges()) {
		return false, nil
	}
	// Should the record change between the read above and the
	// transaction (a settled video has no job of the set's at work), the
	// transaction rolls back and the next check finds what to repair:
	// the ledger short of the freed bytes, the files missing.
	for _, k := range set.keys {
		if _, err := s.quota.Free(ctx, now.OwnerID, k); err != nil {
			return false, fmt.Errorf("free %s: %w", k, err)
		}
		if err := s.blobs.Delete(ctx, k); err != nil {
			return false, err
		}
	}
	plan, err := s.planFair(ctx, now.OwnerID)
	if err != nil {
		return false, err
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		dropped, err := s.store.dropSet(ctx, tx, set, micros(s.now()))
		if err == nil && !dropped {
			err = errSetChanged
		}
		if err != nil {
			return err
		}
		// A video in the trash has its jobs enqueued by its restore
		// (requeueTx): its poster, as it has none, and its streaming
		// jobs, which make what is not recorded.
		if now.DeletedAt != nil || now.QuotaState != quotaCharged {
			return nil
		}
		return s.enqueueTx(ctx, tx, now, plan, set.kind)
	})
	if errors.Is(err, errSetChanged) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	s.changed(now.ID)
	s.log.Warn("check: dropped a damaged derived file set; its job makes it again",
		"video", now.ID, "set", set.name, "keys", set.keys)
	return true, nil
}

// errSetChanged rolls back a repair that found the video's record of the
// set changed meanwhile.
var errSetChanged = errors.New("the derived files changed meanwhile")

// charges are the set's keys with the bytes its video records for them.
func (set *derivedSet) charges() []charge {
	var out []charge
	for _, ch := range set.r.charges() {
		if slices.Contains(set.keys, ch.key) {
			out = append(out, ch)
		}
	}
	return out
}

// dropSet removes a derived set from its video's record, if the video
// still records it as the check saw it.
func (s *store) dropSet(ctx context.Context, tx *sql.Tx, set *derivedSet, now int64) (bool, error) {
	id := set.r.ID
	switch set.kind {
	case KindPoster:
		res, err := tx.ExecContext(ctx, `UPDATE videos SET poster_key = '', poster_bytes = 0, poster_none = 0, updated_at = $1
WHERE id = $2 AND poster_key = $3 AND poster_bytes = $4`, now, id, set.r.PosterKey, set.r.PosterBytes)
		return affected(res, err, "drop poster")
	case KindTranscode:
		// The first job finds the ladder unfinished and has the rest
		// make what is missing: the rungs recorded done are not made
		// again (Transcode).
		if _, err := tx.ExecContext(ctx, `DELETE FROM video_renditions WHERE video_id = $1 AND height = $2`, id, set.height); err != nil {
			return false, fmt.Errorf("drop rendition: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE videos SET streaming_state = 'running', streaming_percent = 99
WHERE id = $1 AND streaming_state = 'done'`, id); err != nil {
			return false, fmt.Errorf("drop rendition: %w", err)
		}
	case KindStoryboard:
		if err := s.setStoryboard(ctx, tx, id, false); err != nil {
			return false, err
		}
	}
	ok, err := s.dropFiles(ctx, tx, id, set.files)
	if err != nil || !ok {
		return ok, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE videos SET updated_at = $1 WHERE id = $2`, now, id)
	return err == nil, err
}

// dropFiles deletes the rows of a video's files named names; false when
// they were not all there (the caller rolls its transaction back).
func (s *store) dropFiles(ctx context.Context, q sqldb.Querier, id string, names []string) (bool, error) {
	if len(names) == 0 {
		return true, nil
	}
	res, err := q.ExecContext(ctx, `DELETE FROM video_files WHERE video_id = $1 AND name IN (`+placeholders(2, len(names))+`)`,
		append([]any{id}, idArgs(names)...)...)
	if err != nil {
		return false, fmt.Errorf("drop video files: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("drop video files: %w", err)
	}
	return n == int64(len(names)), nil
}
