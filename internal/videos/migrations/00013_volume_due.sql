-- +goose Up
-- The daily-upload reservation whose commit a ready video still owes
-- (volume.go): written in the transaction that makes the video ready,
-- cleared once the usage service has counted its size. A process killed
-- between the two leaves it to the maintenance job, so the day's volume
-- is never lost. Empty when nothing is owed.
ALTER TABLE videos ADD COLUMN volume_res TEXT NOT NULL DEFAULT '';
CREATE INDEX videos_volume_due ON videos (updated_at) WHERE volume_res <> '';

-- +goose Down
DROP INDEX videos_volume_due;
ALTER TABLE videos DROP COLUMN volume_res;
