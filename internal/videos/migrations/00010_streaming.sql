-- +goose Up
-- Adaptive streaming (streaming.go). Expand-only: new tables and new
-- columns with defaults, so that a replica still on the previous version
-- runs beside this one.

-- The files made from a video and stored beside it (renditions, their
-- playlists, the storyboard), one row per file once it is stored and
-- charged to the owner's quota. They count as objects of the video: the
-- trash frees them, a restore charges them again, the purge deletes them.
CREATE TABLE video_files (
    video_id     TEXT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,   -- as served under /media/<token>/<id>/: 360.mp4, 360.m3u8, storyboard.jpg...
    blob_key     TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (video_id, name)
);

-- The renditions of a video's ladder, by pixel height: done (its files are
-- in video_files, and the master playlist lists it with these figures) or
-- skipped, with the reason (quota_exceeded).
CREATE TABLE video_renditions (
    video_id          TEXT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    height            INTEGER NOT NULL,
    width             INTEGER NOT NULL DEFAULT 0,
    bandwidth         BIGINT NOT NULL DEFAULT 0,
    average_bandwidth BIGINT NOT NULL DEFAULT 0,
    codecs            TEXT NOT NULL DEFAULT '',
    frame_rate        DOUBLE PRECISION NOT NULL DEFAULT 0,
    state             TEXT NOT NULL CHECK (state IN ('done', 'skipped')),
    reason            TEXT NOT NULL DEFAULT '',
    created_at        BIGINT NOT NULL,
    PRIMARY KEY (video_id, height)
);

-- Where the ladder stands: pending until a transcode job starts, running,
-- then done (every rung done or skipped) or failed (the source cannot be
-- streamed, or the job gave up). The original stays playable throughout.
-- streaming_percent is the ladder's progress, 0 to 100; storyboard is 1
-- once the storyboard's files are stored (so that lists need not read
-- video_files to give its URL).
-- (No CHECK on the column: SQLite cannot drop a column a CHECK names.)
ALTER TABLE videos ADD COLUMN streaming_state TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE videos ADD COLUMN streaming_percent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE videos ADD COLUMN storyboard INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE videos DROP COLUMN storyboard;
ALTER TABLE videos DROP COLUMN streaming_percent;
ALTER TABLE videos DROP COLUMN streaming_state;
DROP TABLE video_renditions;
DROP TABLE video_files;
