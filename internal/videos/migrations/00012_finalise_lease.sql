-- +goose Up
-- A finalising upload's row is a lease its process renews (finalise.go):
-- lease_until is when the row is taken for abandoned by a dead process,
-- in Unix microseconds. Rows the previous release inserts keep 0 and are
-- taken for abandoned after staleAfter, as before.
ALTER TABLE videos ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE videos DROP COLUMN lease_until;
