-- The fair-queueing count (planFair, jobs.go) reads one owner's waiting
-- jobs at each upload: without this index it scanned every job of its
-- kinds that River keeps, completed ones included. The index is partial,
-- on the waiting states only, in the same words as the query's, so that
-- both engines see that it applies.

-- +goose Up
CREATE INDEX IF NOT EXISTS videos_river_job_waiting_owner ON river_job ((metadata ->> 'owner_id'), kind)
WHERE state IN ('available', 'pending', 'retryable', 'scheduled');

-- +goose Down
DROP INDEX IF EXISTS videos_river_job_waiting_owner;
