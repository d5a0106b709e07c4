-- The cancel of a trashed video's jobs (cancelJobsSQL, jobs.go) finds
-- them by the video id in their metadata: without this index it read
-- every unfinished job, a few milliseconds a delete with a backlog of a
-- few thousand. Partial on the unfinished states, in the query's words,
-- as 00001 is.

-- +goose Up
CREATE INDEX IF NOT EXISTS videos_river_job_unfinished_video ON river_job ((metadata ->> 'video_id'))
WHERE state IN ('available', 'pending', 'retryable', 'running', 'scheduled');

-- +goose Down
DROP INDEX IF EXISTS videos_river_job_unfinished_video;
