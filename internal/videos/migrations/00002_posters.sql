-- +goose Up
-- Posters are cut after the upload has been answered (posters.go).
-- poster_due is 0 when no poster is due; otherwise the time (Unix
-- microseconds) from which a worker may take the video on: 1 for a
-- poster waiting for its first attempt, the end of a lease while a worker
-- cuts it or of a pause after a failed attempt. poster_tries counts the
-- attempts, so that a file ffmpeg chokes on is given up rather than tried
-- for ever.
ALTER TABLE videos ADD COLUMN poster_due BIGINT NOT NULL DEFAULT 0;
ALTER TABLE videos ADD COLUMN poster_tries INTEGER NOT NULL DEFAULT 0;
CREATE INDEX videos_poster_due ON videos (poster_due) WHERE poster_due > 0;

-- +goose Down
DROP INDEX videos_poster_due;
ALTER TABLE videos DROP COLUMN poster_tries;
ALTER TABLE videos DROP COLUMN poster_due;
