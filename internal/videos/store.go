package videos

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// store is the videos service's SQL. It owns the videos, uploads and
// media_keys tables; nobody else reads them.
type store struct {
	db *sqldb.DB
	// byID is the lookup of a video by id on the reader pool, prepared
	// once: /media runs it for every range request, and parsing the
	// statement each time was half its cost on SQLite.
	byID *sql.Stmt
}

func newStore(ctx context.Context, db *sqldb.DB) (*store, error) {
	st, err := db.R.PrepareContext(ctx, `SELECT `+videoCols+` FROM videos WHERE id = $1`)
	if err != nil {
		return nil, fmt.Errorf("prepare video lookup: %w", err)
	}
	return &store{db: db, byID: st}, nil
}

// Quota states of a video row (see the migration for the state machine).
const (
	quotaCharging = "charging"
	quotaCharged  = "charged"
	quotaFreeing  = "freeing"
	quotaFree     = "free"
)

// record is a video row: what clients see plus what the service keeps to
// itself.
type record struct {
	Video
	VideoCodec, AudioCodec string
	VideoKey, PosterKey    string
	PosterBytes            int64
	QuotaState             string
	QuotaAt                int64
	UpdatedAt              int64
	PurgingAt              sql.NullInt64
	// PosterNone marks a video that went without a poster (see the
	// poster_jobs migration).
	PosterNone bool
	// PosterDue is the previous release's mark of a poster still to cut
	// (00002_posters.sql), read only to take such a video over.
	PosterDue int64
	// StreamingState and StreamingPercent are where the video's ladder
	// stands; Storyboard is whether its storyboard is stored.
	StreamingState   string
	StreamingPercent int
	Storyboard       bool
	// Renditions (from video_renditions) and Files (from video_files) are
	// loaded only where needed: nil means not loaded.
	Renditions []rendition
	Files      []derivedFile
	// LeaseUntil is written with a finalising row only: when the row is
	// taken for abandoned unless its process renews it (finalise.go).
	LeaseUntil int64
}

// storedBytes is what the video counts toward its owner's quota.
// Its derived files must be loaded (loadFiles).
func (r record) storedBytes() int64 {
	var n int64
	for _, c := range r.charges() {
		n += c.bytes
	}
	return n
}

const videoCols = `id, owner_id, title, description, filename, status, size_bytes, content_type,
duration_seconds, width, height, video_codec, audio_codec, video_key, poster_key, poster_bytes,
quota_state, quota_at, created_at, updated_at, deleted_at, purging_at, poster_none, poster_due,
streaming_state, streaming_percent, storyboard`

type scanner interface{ Scan(dest ...any) error }

func scanVideo(s scanner) (record, error) {
	var (
		r          record
		created    int64
		deleted    sql.NullInt64
		none       int
		storyboard int
	)
	err := s.Scan(&r.ID, &r.OwnerID, &r.Title, &r.Description, &r.Filename, &r.Status, &r.SizeBytes, &r.ContentType,
		&r.DurationSeconds, &r.Width, &r.Height, &r.VideoCodec, &r.AudioCodec, &r.VideoKey, &r.PosterKey, &r.PosterBytes,
		&r.QuotaState, &r.QuotaAt, &created, &r.UpdatedAt, &deleted, &r.PurgingAt, &none, &r.PosterDue,
		&r.StreamingState, &r.StreamingPercent, &storyboard)
	if err != nil {
		return record{}, err
	}
	r.PosterNone = none != 0
	r.Storyboard = storyboard != 0
	r.CreatedAt = fromMicros(created)
	if deleted.Valid {
		t := fromMicros(deleted.Int64)
		r.DeletedAt = &t
	}
	return r, nil
}

func (s *store) insertVideo(ctx context.Context, q sqldb.Querier, r record) error {
	_, err := q.ExecContext(ctx, `INSERT INTO videos (`+videoCols+`, lease_until) VALUES
($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, NULL, NULL, $21, $22,
 $23, 0, 0, $24)`,
		r.ID, r.OwnerID, r.Title, r.Description, r.Filename, r.Status, r.SizeBytes, r.ContentType,
		r.DurationSeconds, r.Width, r.Height, r.VideoCodec, r.AudioCodec, r.VideoKey, r.PosterKey, r.PosterBytes,
		r.QuotaState, r.QuotaAt, micros(r.CreatedAt), r.UpdatedAt, boolInt(r.PosterNone), r.PosterDue, cmp.Or(r.StreamingState, streamingPending),
		r.LeaseUntil)
	if err != nil {
		return fmt.Errorf("insert video: %w", err)
	}
	return nil
}

func (s *store) video(ctx context.Context, q sqldb.Querier, id string) (record, error) {
	var row *sql.Row
	if q == sqldb.Querier(s.db.R) && s.byID != nil {
		row = s.byID.QueryRowContext(ctx, id)
	} else {
		row = q.QueryRowContext(ctx, `SELECT `+videoCols+` FROM videos WHERE id = $1`, id)
	}
	r, err := scanVideo(row)
	if errors.Is(err, sql.ErrNoRows) {
		return record{}, ErrVideoNotFound
	}
	if err != nil {
		return record{}, fmt.Errorf("select video: %w", err)
	}
	return r, nil
}

// markReady finishes a processing video: its metadata and charged quota,
// in the transaction that records UPLOAD_VIDEO and enqueues its poster,
// with the daily-upload reservation its size is still to be committed to
// (volumeRes, see volume.go).
func (s *store) markReady(ctx context.Context, q sqldb.Querier, r record, volumeRes string, now int64) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE videos SET status = 'ready', size_bytes = $1, content_type = $2,
duration_seconds = $3, width = $4, height = $5, video_codec = $6, audio_codec = $7, poster_key = $8,
poster_bytes = $9, quota_state = 'charged', quota_at = $10, updated_at = $10, volume_res = $11
WHERE id = $12 AND status = 'processing'`,
		r.SizeBytes, r.ContentType, r.DurationSeconds, r.Width, r.Height, r.VideoCodec, r.AudioCodec,
		r.PosterKey, r.PosterBytes, now, volumeRes, r.ID)
	return affected(res, err, "mark video ready")
}

// volumeDue is a ready video whose size is still to be committed to the
// daily upload volume on reservation Res.
type volumeDue struct {
	ID, Res string
	Size    int64
}

// volumesDue lists up to limit ready videos whose upload volume is not
// counted yet, oldest first.
func (s *store) volumesDue(ctx context.Context, limit int) ([]volumeDue, error) {
	rows, err := s.db.W.QueryContext(ctx, fmt.Sprintf(`SELECT id, volume_res, size_bytes FROM videos
WHERE volume_res <> '' AND status = 'ready' ORDER BY updated_at LIMIT %d`, limit))
	if err != nil {
		return nil, fmt.Errorf("list upload volumes due: %w", err)
	}
	return scanAll(rows, "list upload volumes due", func(r scanner) (volumeDue, error) {
		var v volumeDue
		err := r.Scan(&v.ID, &v.Res, &v.Size)
		return v, err
	})
}

// volumeCounted clears what a video owed the daily upload volume.
func (s *store) volumeCounted(ctx context.Context, q sqldb.Querier, id, res string) error {
	_, err := q.ExecContext(ctx, `UPDATE videos SET volume_res = '' WHERE id = $1 AND volume_res = $2`, id, res)
	return wrapErr(err, "clear upload volume due")
}

// attachPoster records a video's poster (key "" and none for a video
// that goes without), if the video is still a live one whose bytes count
// and has none yet: one that went to the trash (or away) meanwhile is
// left alone, and the caller gives the poster back.
func (s *store) attachPoster(ctx context.Context, q sqldb.Querier, id, key string, bytes int64, none bool, now int64) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE videos SET poster_key = $1, poster_bytes = $2, poster_none = $3, updated_at = $4
WHERE id = $5 AND poster_key = '' AND status = 'ready' AND deleted_at IS NULL AND quota_state = 'charged'`,
		key, bytes, boolInt(none), now, id)
	return affected(res, err, "attach poster")
}

// setPosterNone marks (or clears) that a video goes without a poster, if
// it has none: an admin cancelled or retried its poster job.
func (s *store) setPosterNone(ctx context.Context, q sqldb.Querier, id string, none bool) error {
	if _, err := q.ExecContext(ctx, `UPDATE videos SET poster_none = $1 WHERE id = $2 AND poster_key = ''`, boolInt(none), id); err != nil {
		return fmt.Errorf("mark poster: %w", err)
	}
	return nil
}

// postersMissing lists up to limit live videos that have no poster and
// did not go without one, oldest first.
func (s *store) postersMissing(ctx context.Context, limit int) ([]record, error) {
	return s.list(ctx, "videos without a poster", fmt.Sprintf(`SELECT `+videoCols+` FROM videos
WHERE poster_key = '' AND poster_none = 0 AND status = 'ready' AND deleted_at IS NULL ORDER BY created_at LIMIT %d`, limit))
}

// takeLegacyPoster takes over a video the previous release marked with a
// poster due, unless one of its workers holds it (a lease, or a pause
// after a failed attempt, running until after now): it reports the time
// to come back then, or zero once the video is this release's.
func (s *store) takeLegacyPoster(ctx context.Context, q sqldb.Querier, id string, now int64) (int64, error) {
	var due int64
	err := q.QueryRowContext(ctx, `UPDATE videos SET poster_due = 0 WHERE id = $1 AND poster_due > 0 AND poster_due <= $2
RETURNING 0`, id, now).Scan(&due)
	if err == nil || !errors.Is(err, sql.ErrNoRows) {
		return 0, wrapErr(err, "take over a poster")
	}
	err = q.QueryRowContext(ctx, `SELECT poster_due FROM videos WHERE id = $1`, id).Scan(&due)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return due, wrapErr(err, "take over a poster")
}

// live reports whether a video is ready and not in the trash.
func (s *store) live(ctx context.Context, id string) (bool, error) {
	var n int
	err := s.db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM videos WHERE id = $1 AND status = 'ready' AND deleted_at IS NULL`, id).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("is the video live: %w", err)
	}
	return n > 0, nil
}

// markFailed turns a processing video whose finalisation died into a
// failed one that counts nothing.
func (s *store) markFailed(ctx context.Context, q sqldb.Querier, id string, now int64) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE videos SET status = 'failed', quota_state = 'free', quota_at = $1, updated_at = $1
WHERE id = $2 AND status = 'processing'`, now, id)
	return affected(res, err, "mark video failed")
}

func (s *store) deleteVideo(ctx context.Context, q sqldb.Querier, id string) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM videos WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete video row: %w", err)
	}
	return nil
}

func (s *store) updateVideo(ctx context.Context, q sqldb.Querier, id, title, description string, now int64) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE videos SET title = $1, description = $2, updated_at = $3
WHERE id = $4 AND deleted_at IS NULL`, title, description, now, id)
	return affected(res, err, "update video")
}

// trashOne moves a video to the trash; a charged video's bytes are then
// to be freed.
func (s *store) trashOne(ctx context.Context, q sqldb.Querier, id string, now int64) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE videos SET deleted_at = $1, updated_at = $1,
quota_at = $1, quota_state = CASE WHEN quota_state = 'charged' THEN 'freeing' ELSE quota_state END
WHERE id = $2 AND deleted_at IS NULL AND status <> 'processing'`, now, id)
	return affected(res, err, "trash video")
}

// trashAll moves all of an owner's videos (but those still processing) to
// the trash and returns them.
func (s *store) trashAll(ctx context.Context, q sqldb.Querier, owner string, now int64) ([]record, error) {
	rows, err := q.QueryContext(ctx, `UPDATE videos SET deleted_at = $1, updated_at = $1,
quota_at = $1, quota_state = CASE WHEN quota_state = 'charged' THEN 'freeing' ELSE quota_state END
WHERE owner_id = $2 AND deleted_at IS NULL AND status <> 'processing'
RETURNING `+videoCols, now, owner)
	if err != nil {
		return nil, fmt.Errorf("trash all videos: %w", err)
	}
	return collect(rows, "trash all videos")
}

// setQuotaState moves a video's quota state from one value to another; it
// reports false when the row was not in state from (someone else moved it).
func (s *store) setQuotaState(ctx context.Context, q sqldb.Querier, id, from, to string, now int64) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE videos SET quota_state = $1, quota_at = $2 WHERE id = $3 AND quota_state = $4`,
		to, now, id, from)
	return affected(res, err, "set video quota state")
}

// claimRestore marks a trashed video as being restored, unless its purge
// has begun or another restore holds it.
func (s *store) claimRestore(ctx context.Context, q sqldb.Querier, id string, now, leaseUntil int64) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE videos SET quota_state = 'charging', quota_at = $1, lease_until = $2
WHERE id = $3 AND deleted_at IS NOT NULL AND purging_at IS NULL AND quota_state = 'free'`, now, leaseUntil, id)
	return affected(res, err, "claim video restore")
}

// renewRestore pushes a restore's lease on; false once the video is no
// longer being restored.
func (s *store) renewRestore(ctx context.Context, q sqldb.Querier, id string, until int64) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE videos SET lease_until = $1
WHERE id = $2 AND deleted_at IS NOT NULL AND quota_state = 'charging'`, until, id)
	return affected(res, err, "renew restore lease")
}

// restore takes a video out of the trash with its quota charged (state
// 'charged'), or, for a failed video that counts nothing, as it is.
func (s *store) restore(ctx context.Context, q sqldb.Querier, id, fromState, toState string, now int64) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE videos SET deleted_at = NULL, quota_state = $1, quota_at = $2, updated_at = $2
WHERE id = $3 AND deleted_at IS NOT NULL AND purging_at IS NULL AND quota_state = $4`, toState, now, id, fromState)
	return affected(res, err, "restore video")
}

func (s *store) feed(ctx context.Context, req page.Request) ([]record, error) {
	q := `SELECT ` + videoCols + ` FROM videos WHERE deleted_at IS NULL AND status = 'ready'`
	args := []any{}
	if !req.After.Zero() {
		q += ` AND (created_at, id) < ($1, $2)`
		args = append(args, req.After.T, req.After.ID)
	}
	q += fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT %d`, req.Limit+1)
	return s.list(ctx, "feed", q, args...)
}

func (s *store) mine(ctx context.Context, owner string, req page.Request) ([]record, error) {
	q := `SELECT ` + videoCols + ` FROM videos WHERE owner_id = $1 AND deleted_at IS NULL`
	args := []any{owner}
	if !req.After.Zero() {
		q += ` AND (created_at, id) < ($2, $3)`
		args = append(args, req.After.T, req.After.ID)
	}
	q += fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT %d`, req.Limit+1)
	return s.list(ctx, "own videos", q, args...)
}

// readyAt lists ready, undeleted videos (of one owner, or everyone's when
// owner is empty) by position, newest first, with their total: the
// original system's clients page by number and show a count.
func (s *store) readyAt(ctx context.Context, owner string, offset, limit int) ([]record, int, error) {
	where := `deleted_at IS NULL AND status = 'ready'`
	args := []any{}
	if owner != "" {
		where += ` AND owner_id = $1`
		args = append(args, owner)
	}
	var total int
	if err := s.db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM videos WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count videos: %w", err)
	}
	if offset >= total {
		return nil, total, nil
	}
	rs, err := s.list(ctx, "videos by position", fmt.Sprintf(`SELECT `+videoCols+` FROM videos WHERE `+where+
		` ORDER BY created_at DESC, id DESC LIMIT %d OFFSET %d`, limit, offset), args...)
	return rs, total, err
}

func (s *store) trash(ctx context.Context, owner string, req page.Request) ([]record, error) {
	q := `SELECT ` + videoCols + ` FROM videos WHERE owner_id = $1 AND deleted_at IS NOT NULL`
	args := []any{owner}
	if !req.After.Zero() {
		q += ` AND (deleted_at, id) < ($2, $3)`
		args = append(args, req.After.T, req.After.ID)
	}
	q += fmt.Sprintf(` ORDER BY deleted_at DESC, id DESC LIMIT %d`, req.Limit+1)
	return s.list(ctx, "trash", q, args...)
}

// quotaPending lists videos stuck in a quota state since before, or
// whose restore's lease lapsed before leaseBefore (its process died), for
// the maintenance job.
// Their derived files are loaded: the job frees them with the video.
func (s *store) quotaPending(ctx context.Context, state string, before, leaseBefore int64, limit int) ([]record, error) {
	rs, err := s.list(ctx, "pending quota steps", fmt.Sprintf(`SELECT `+videoCols+` FROM videos
WHERE quota_state IN ('charging', 'freeing') AND quota_state = $2
AND (quota_at < $1 OR (deleted_at IS NOT NULL AND lease_until > 0 AND lease_until < $3)) ORDER BY quota_at LIMIT %d`, limit),
		before, state, leaseBefore)
	if err != nil {
		return nil, err
	}
	return rs, s.withFiles(ctx, s.db.W, rs)
}

// staleProcessing lists videos whose finalisation began before before and
// never finished (the process died). The row of a resumable upload still
// open is left to its recovery (TUS.Finish), which takes it up again: the
// upload's bytes are all there.
func (s *store) staleProcessing(ctx context.Context, before, now int64, limit int) ([]record, error) {
	return s.list(ctx, "stale processing videos", fmt.Sprintf(`SELECT `+videoCols+` FROM videos
WHERE status = 'processing' AND (updated_at < $1 OR (lease_until > 0 AND lease_until < $2))
AND NOT EXISTS (SELECT 1 FROM uploads WHERE uploads.id = videos.id AND uploads.state = 'open')
ORDER BY updated_at LIMIT %d`, limit), before, now)
}

// dropLapsedFinalise deletes the processing row of a finalisation whose
// lease lapsed (its process died), for a resumable upload's next attempt
// to insert its own under the same id.
func (s *store) dropLapsedFinalise(ctx context.Context, q sqldb.Querier, id string, now int64) error {
	_, err := q.ExecContext(ctx, `DELETE FROM videos WHERE id = $1 AND status = 'processing' AND lease_until < $2`, id, now)
	return wrapErr(err, "take over a lapsed finalisation")
}

// renewFinalise pushes a finalising video's lease on; false once the row
// is no longer processing.
func (s *store) renewFinalise(ctx context.Context, q sqldb.Querier, id string, until int64) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE videos SET lease_until = $1 WHERE id = $2 AND status = 'processing'`, until, id)
	return affected(res, err, "renew finalise lease")
}

// purgeable lists trashed videos deleted before cutoff whose bytes are no
// longer counted, including any whose purge began and did not finish. A
// video whose upload volume is still owed waits until it is counted.
func (s *store) purgeable(ctx context.Context, cutoff int64, limit int) ([]record, error) {
	return s.list(ctx, "purgeable videos", fmt.Sprintf(`SELECT `+videoCols+` FROM videos
WHERE deleted_at IS NOT NULL AND deleted_at < $1 AND quota_state = 'free' AND volume_res = ''
ORDER BY deleted_at LIMIT %d`, limit), cutoff)
}

// markPurging records that the purge of a video begins, before any of its
// blobs is deleted; a restore can no longer claim it from then on.
func (s *store) markPurging(ctx context.Context, q sqldb.Querier, id string, cutoff, now int64) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE videos SET purging_at = COALESCE(purging_at, $1)
WHERE id = $2 AND deleted_at IS NOT NULL AND deleted_at < $3 AND quota_state = 'free'`, now, id, cutoff)
	return affected(res, err, "mark video purging")
}

// deletePurged removes the row of a video whose blobs are gone.
func (s *store) deletePurged(ctx context.Context, q sqldb.Querier, id string) (bool, error) {
	res, err := q.ExecContext(ctx, `DELETE FROM videos WHERE id = $1 AND purging_at IS NOT NULL`, id)
	return affected(res, err, "delete purged video")
}

// videosAfter lists up to limit videos whose id sorts after after, in id
// order (the check reads every video this way).
func (s *store) videosAfter(ctx context.Context, after string, limit int) ([]record, error) {
	return s.list(ctx, "videos", `SELECT `+videoCols+` FROM videos WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
}

// videosOf lists all the owner's videos, in the trash and processing too.
func (s *store) videosOf(ctx context.Context, owner string) ([]record, error) {
	return s.list(ctx, "videos of an owner", `SELECT `+videoCols+` FROM videos WHERE owner_id = $1`, owner)
}

func (s *store) list(ctx context.Context, what, query string, args ...any) ([]record, error) {
	rows, err := s.db.R.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	return collect(rows, "list "+what)
}

func collect(rows *sql.Rows, what string) ([]record, error) { return scanAll(rows, what, scanVideo) }

// scanAll reads every row of rows with scan, and closes them.
func scanAll[T any](rows *sql.Rows, what string, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: scan: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func wrapErr(err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func affected(res sql.Result, err error, what string) (bool, error) {
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	return n > 0, nil
}

// Upload states of a resumable upload.
const (
	uploadOpen       = "open"
	uploadDone       = "done"
	uploadFailed     = "failed"
	uploadTerminated = "terminated"
	uploadExpired    = "expired"
)

// uploadRow is a resumable upload.
type uploadRow struct {
	ID, OwnerID                  string
	Title, Description, Filename string
	SizeBytes                    int64
	QuotaRes, LimitRes           string
	State                        string
	VideoID                      sql.NullString
	CreatedAt, UpdatedAt         int64
	ExpiresAt                    int64
}

const uploadCols = `id, owner_id, title, description, filename, size_bytes, quota_res, limit_res, state, video_id,
created_at, updated_at, expires_at`

func scanUpload(s scanner) (uploadRow, error) {
	var u uploadRow
	err := s.Scan(&u.ID, &u.OwnerID, &u.Title, &u.Description, &u.Filename, &u.SizeBytes, &u.QuotaRes, &u.LimitRes,
		&u.State, &u.VideoID, &u.CreatedAt, &u.UpdatedAt, &u.ExpiresAt)
	return u, err
}

func (s *store) insertUpload(ctx context.Context, q sqldb.Querier, u uploadRow) error {
	_, err := q.ExecContext(ctx, `INSERT INTO uploads (`+uploadCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, $11, $12)`,
		u.ID, u.OwnerID, u.Title, u.Description, u.Filename, u.SizeBytes, u.QuotaRes, u.LimitRes, u.State,
		u.CreatedAt, u.UpdatedAt, u.ExpiresAt)
	if err != nil {
		return fmt.Errorf("insert upload: %w", err)
	}
	return nil
}

func (s *store) upload(ctx context.Context, q sqldb.Querier, id string) (uploadRow, error) {
	u, err := scanUpload(q.QueryRowContext(ctx, `SELECT `+uploadCols+` FROM uploads WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return uploadRow{}, ErrUploadNotFound
	}
	if err != nil {
		return uploadRow{}, fmt.Errorf("select upload: %w", err)
	}
	return u, nil
}

// touchUpload pushes an open upload's expiry on: it is still in use.
func (s *store) touchUpload(ctx context.Context, q sqldb.Querier, id string, now, expires int64) error {
	_, err := q.ExecContext(ctx, `UPDATE uploads SET updated_at = $1, expires_at = $2 WHERE id = $3 AND state = 'open'`, now, expires, id)
	if err != nil {
		return fmt.Errorf("touch upload: %w", err)
	}
	return nil
}

// closeUpload moves an open upload to a final state; false when it was not
// open any more.
func (s *store) closeUpload(ctx context.Context, q sqldb.Querier, id, state, videoID string, now int64) (bool, error) {
	var vid any
	if videoID != "" {
		vid = videoID
	}
	res, err := q.ExecContext(ctx, `UPDATE uploads SET state = $1, video_id = $2, updated_at = $3 WHERE id = $4 AND state = 'open'`,
		state, vid, now, id)
	return affected(res, err, "close upload")
}

func (s *store) expiredUploads(ctx context.Context, now int64, limit int) ([]uploadRow, error) {
	rows, err := s.db.R.QueryContext(ctx, fmt.Sprintf(`SELECT `+uploadCols+` FROM uploads
WHERE state = 'open' AND expires_at < $1 ORDER BY expires_at LIMIT %d`, limit), now)
	if err != nil {
		return nil, fmt.Errorf("list expired uploads: %w", err)
	}
	return scanAll(rows, "list expired uploads", scanUpload)
}

// uploadsFinishing lists up to limit open uploads whose video row is
// processing with a lapsed lease: a finalisation that died.
func (s *store) uploadsFinishing(ctx context.Context, now int64, limit int) ([]string, error) {
	rows, err := s.db.W.QueryContext(ctx, fmt.Sprintf(`SELECT u.id FROM uploads u JOIN videos v ON v.id = u.id
WHERE u.state = 'open' AND v.status = 'processing' AND v.lease_until < $1 ORDER BY v.lease_until LIMIT %d`, limit), now)
	if err != nil {
		return nil, fmt.Errorf("list uploads being finished: %w", err)
	}
	return scanAll(rows, "list uploads being finished", func(r scanner) (string, error) {
		var id string
		err := r.Scan(&id)
		return id, err
	})
}

// forgetUploads deletes closed uploads last changed before before: they are
// kept a while only so a client that lost the answer to its last PATCH can
// still learn which video it made.
func (s *store) forgetUploads(ctx context.Context, before int64) error {
	if _, err := s.db.W.ExecContext(ctx, `DELETE FROM uploads WHERE state <> 'open' AND updated_at < $1`, before); err != nil {
		return fmt.Errorf("forget closed uploads: %w", err)
	}
	return nil
}

// mediaKey returns the shared media signing key, creating it on first
// use. Every replica races to insert a random key and then reads the one
// that won, so all of them sign alike.
func (s *store) mediaKey(ctx context.Context, now time.Time) ([]byte, error) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	_, err := s.db.W.ExecContext(ctx, `INSERT INTO media_keys (id, secret, created_at) VALUES ('media', $1, $2) ON CONFLICT (id) DO NOTHING`,
		base64.RawStdEncoding.EncodeToString(b[:]), micros(now))
	if err != nil {
		return nil, fmt.Errorf("create media signing key: %w", err)
	}
	var secret string
	if err := s.db.W.QueryRowContext(ctx, `SELECT secret FROM media_keys WHERE id = 'media'`).Scan(&secret); err != nil {
		return nil, fmt.Errorf("read media signing key: %w", err)
	}
	key, err := base64.RawStdEncoding.DecodeString(secret)
	if err != nil || len(key) < 32 {
		return nil, errors.New("read media signing key: the stored key is malformed")
	}
	return key, nil
}

func micros(t time.Time) int64     { return t.UnixMicro() }
func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }
