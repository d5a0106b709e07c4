-- +goose Up
-- The accounts version (authn.Watch): one row whose number every change of
-- an account moves, in the change's own transaction (Store.updateUser and
-- cutTokens). Each process reads it every second, and while it stands keeps
-- what it has read of accounts rather than reading each again every few
-- seconds. Its row lock orders the changes, so a reader that sees a number
-- sees every change counted in it. Additive: a previous release runs on it
-- (without moving it, which the caches' one-minute bound covers).
CREATE TABLE users_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO users_version (id, version) VALUES (1, 0);

-- +goose Down
DROP TABLE users_version;
