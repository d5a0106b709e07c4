-- +goose Up
-- The tus lock (tuslock.go, decision 0017): one request at a time works on
-- a resumable upload, across the replicas sharing the tus directory.
-- Expand-only: a new table, which the previous release does not read.
-- holder is a process's random id; expires_at (unix microseconds) is when
-- the lease lapses unless renewed; release_requested is 1 once another
-- request waits for the lock, which the holder polls and then lets go.
CREATE TABLE tus_locks (
    upload_id         TEXT PRIMARY KEY,
    holder            TEXT NOT NULL,
    expires_at        BIGINT NOT NULL,
    release_requested INTEGER NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE tus_locks;
