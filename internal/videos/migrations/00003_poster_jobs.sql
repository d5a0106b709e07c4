-- +goose Up
-- Posters are jobs on the River queue now (posters.go, jobs.go): finalise
-- inserts one in the transaction that marks the video ready.
--
-- poster_due and poster_tries (00002) are left in place, unused by this
-- release: the previous release reads and writes them, and keeps working
-- on this schema during a rolling upgrade. A video it finalised (or left
-- due) gets a poster job from the maintenance job, which takes it over
-- only once no worker of the previous release holds it. A later migration
-- drops the two columns, once no such release can run.
--
-- poster_none marks a video that went without a poster (nothing to cut,
-- no room in the quota, every attempt failed, or an admin cancelled the
-- job): a restore does not try again. A video with neither a poster nor
-- this mark is waiting for its poster.
ALTER TABLE videos ADD COLUMN poster_none INTEGER NOT NULL DEFAULT 0;
UPDATE videos SET poster_none = 1 WHERE poster_key = '' AND poster_due = 0 AND status = 'ready';
-- The maintenance job's scan for live videos still waiting for a poster.
CREATE INDEX videos_poster_missing ON videos (created_at)
    WHERE poster_key = '' AND poster_none = 0 AND status = 'ready' AND deleted_at IS NULL;

-- +goose Down
DROP INDEX videos_poster_missing;
ALTER TABLE videos DROP COLUMN poster_none;
