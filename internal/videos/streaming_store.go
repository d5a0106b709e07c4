package videos

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/reel-video/reel/internal/platform/sqldb"
)

// The SQL of adaptive streaming: the video_files and video_renditions
// tables and the videos' streaming columns (migration 00010).

// Streaming states of a video (videos.streaming_state).
const (
	streamingPending = "pending"
	streamingRunning = "running"
	streamingDone    = "done"
	streamingFailed  = "failed"
)

// Rendition states (video_renditions.state) and the reason of a skip.
const (
	renditionDone    = "done"
	renditionSkipped = "skipped"
	reasonQuota      = "quota_exceeded"
)

// rendition is a row of video_renditions: a rung of the video's ladder,
// by pixel height, done or skipped.
type rendition struct {
	Height, Width               int
	Bandwidth, AverageBandwidth int64
	Codecs                      string
	FrameRate                   float64
	State, Reason               string
	CreatedAt                   int64
}

// derivedFile is a file made from a video and stored beside it under Key,
// served as Name (a row of video_files once stored).
type derivedFile struct {
	Name, Key, ContentType string
	Bytes                  int64
	// path is the local file while it is being stored.
	path string
}

// placeholders returns "$from, $from+1, ..." for n values.
func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(from+i))
	}
	return b.String()
}

func idArgs(ids []string) []any {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return args
}

// renditionsOf reads the renditions of the videos ids, lowest first, in
// one query.
func (s *store) renditionsOf(ctx context.Context, q sqldb.Querier, ids []string) (map[string][]rendition, error) {
	out := map[string][]rendition{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT video_id, height, width, bandwidth, average_bandwidth, codecs, frame_rate,
state, reason, created_at FROM video_renditions WHERE video_id IN (`+placeholders(1, len(ids))+`)
ORDER BY video_id, height`, idArgs(ids)...)
	if err != nil {
		return nil, fmt.Errorf("select renditions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id string
			r  rendition
		)
		if err := rows.Scan(&id, &r.Height, &r.Width, &r.Bandwidth, &r.AverageBandwidth, &r.Codecs, &r.FrameRate,
			&r.State, &r.Reason, &r.CreatedAt); err != nil {
			return nil, fmt.Errorf("select renditions: scan: %w", err)
		}
		out[id] = append(out[id], r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select renditions: %w", err)
	}
	return out, nil
}

// filesOf reads the derived files of the videos ids in one query.
func (s *store) filesOf(ctx context.Context, q sqldb.Querier, ids []string) (map[string][]derivedFile, error) {
	out := map[string][]derivedFile{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT video_id, name, blob_key, size_bytes, content_type FROM video_files
WHERE video_id IN (`+placeholders(1, len(ids))+`) ORDER BY video_id, name`, idArgs(ids)...)
	if err != nil {
		return nil, fmt.Errorf("select video files: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id string
			f  derivedFile
		)
		if err := rows.Scan(&id, &f.Name, &f.Key, &f.Bytes, &f.ContentType); err != nil {
			return nil, fmt.Errorf("select video files: scan: %w", err)
		}
		out[id] = append(out[id], f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select video files: %w", err)
	}
	return out, nil
}

// withFiles loads the derived files of rs, in one query.
func (s *store) withFiles(ctx context.Context, q sqldb.Querier, rs []record) error {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	files, err := s.filesOf(ctx, q, ids)
	if err != nil {
		return err
	}
	for i := range rs {
		rs[i].Files = files[rs[i].ID]
		if rs[i].Files == nil {
			rs[i].Files = []derivedFile{}
		}
	}
	return nil
}

// claimLive holds a video that is ready, not in the trash and charged, for
// the rest of tx: files recorded in tx are then either there before a
// trash frees the video's objects, or refused (false) after it. The
// update locks the row on PostgreSQL; SQLite's single writer serialises
// the transactions anyway.
func (s *store) claimLive(ctx context.Context, tx *sql.Tx, id string) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE videos SET streaming_percent = streaming_percent
WHERE id = $1 AND status = 'ready' AND deleted_at IS NULL AND quota_state = 'charged'`, id)
	return affected(res, err, "hold live video")
}

// putFiles records stored files of a video (replacing rows of the same
// names).
func (s *store) putFiles(ctx context.Context, tx *sql.Tx, id string, files []*derivedFile, now int64) error {
	for _, f := range files {
		_, err := tx.ExecContext(ctx, `INSERT INTO video_files (video_id, name, blob_key, size_bytes, content_type, created_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (video_id, name) DO UPDATE SET blob_key = excluded.blob_key, size_bytes = excluded.size_bytes,
  content_type = excluded.content_type, created_at = excluded.created_at`,
			id, f.Name, f.Key, f.Bytes, f.ContentType, now)
		if err != nil {
			return fmt.Errorf("record video file: %w", err)
		}
	}
	return nil
}

// putRendition records a rung done or skipped (replacing a row of its
// height: a rung skipped for the quota may be done on a later attempt).
func (s *store) putRendition(ctx context.Context, q sqldb.Querier, id string, r rendition) error {
	_, err := q.ExecContext(ctx, `INSERT INTO video_renditions (video_id, height, width, bandwidth, average_bandwidth,
codecs, frame_rate, state, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (video_id, height) DO UPDATE SET width = excluded.width, bandwidth = excluded.bandwidth,
  average_bandwidth = excluded.average_bandwidth, codecs = excluded.codecs, frame_rate = excluded.frame_rate,
  state = excluded.state, reason = excluded.reason, created_at = excluded.created_at`,
		id, r.Height, r.Width, r.Bandwidth, r.AverageBandwidth, r.Codecs, r.FrameRate, r.State, r.Reason, r.CreatedAt)
	if err != nil {
		return fmt.Errorf("record rendition: %w", err)
	}
	return nil
}

// setStreaming sets a video's streaming state and percent.
func (s *store) setStreaming(ctx context.Context, q sqldb.Querier, id, state string, percent int) error {
	_, err := q.ExecContext(ctx, `UPDATE videos SET streaming_state = $1, streaming_percent = $2 WHERE id = $3`, state, percent, id)
	if err != nil {
		return fmt.Errorf("set streaming state: %w", err)
	}
	return nil
}

// setPercent records the progress of a running ladder.
func (s *store) setPercent(ctx context.Context, q sqldb.Querier, id string, percent int) error {
	_, err := q.ExecContext(ctx, `UPDATE videos SET streaming_percent = $1 WHERE id = $2 AND streaming_state = 'running'`, percent, id)
	if err != nil {
		return fmt.Errorf("set streaming percent: %w", err)
	}
	return nil
}

// failStreaming records that a video's ladder will not be made (or not
// finished: the rungs done stay playable).
func (s *store) failStreaming(ctx context.Context, q sqldb.Querier, id string) error {
	if _, err := q.ExecContext(ctx, `UPDATE videos SET streaming_state = 'failed' WHERE id = $1`, id); err != nil {
		return fmt.Errorf("set streaming failed: %w", err)
	}
	return nil
}

// setStoryboard records whether a video's storyboard is stored.
func (s *store) setStoryboard(ctx context.Context, q sqldb.Querier, id string, made bool) error {
	v := 0
	if made {
		v = 1
	}
	if _, err := q.ExecContext(ctx, `UPDATE videos SET storyboard = $1 WHERE id = $2`, v, id); err != nil {
		return fmt.Errorf("set storyboard: %w", err)
	}
	return nil
}

// isLive reads whether a video is still ready and out of the trash.
func (s *store) isLive(ctx context.Context, id string) (bool, error) {
	var n int
	err := s.db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM videos WHERE id = $1 AND status = 'ready' AND deleted_at IS NULL`, id).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("check video: %w", err)
	}
	return n > 0, nil
}
