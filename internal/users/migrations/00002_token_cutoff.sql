-- +goose Up
-- Access tokens issued before tokens_valid_after (Unix microseconds) are
-- refused by every service's verifier (authn.Standing): disabling an
-- account sets it, so that its tokens stop working within seconds rather
-- than when they expire. Additive, so a previous release runs on it.
ALTER TABLE users ADD COLUMN tokens_valid_after BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE users DROP COLUMN tokens_valid_after;
