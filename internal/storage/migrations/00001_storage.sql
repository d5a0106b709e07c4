-- +goose Up
-- One row per user who ever reserved, stored or had a quota set. The
-- quota lives on the same row as the counters so that Reserve can decide
-- with a single conditional UPDATE of this row, which both engines make
-- atomic (SQLite: one writer; PostgreSQL: the row lock, and READ COMMITTED
-- re-checks the WHERE clause against the latest row version after a wait).
-- The CHECKs turn a bookkeeping bug into a loud error instead of wrong
-- figures.
CREATE TABLE storage_accounts (
    user_id    TEXT PRIMARY KEY,
    used       BIGINT NOT NULL DEFAULT 0 CHECK (used >= 0),
    reserved   BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    quota      BIGINT CHECK (quota IS NULL OR quota >= -1), -- NULL: the configured default; -1: unlimited
    updated_at BIGINT NOT NULL
);

-- Reservations are kept for a while after they settle so that a repeated
-- Commit (a retry whose first answer was lost) is recognised and answered
-- the same way; the sweep deletes them later.
CREATE TABLE storage_reservations (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    bytes      BIGINT NOT NULL CHECK (bytes >= 0),
    state      TEXT NOT NULL CHECK (state IN ('held', 'committed', 'released', 'expired')),
    object     TEXT,
    actual     BIGINT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    settled_at BIGINT
);
CREATE INDEX storage_reservations_held ON storage_reservations (expires_at) WHERE state = 'held';
CREATE INDEX storage_reservations_settled ON storage_reservations (settled_at) WHERE state <> 'held';

-- Stored bytes per object, so that Free knows exactly how much leaves and
-- frees nothing twice (the row is deleted as the bytes leave).
CREATE TABLE storage_objects (
    user_id    TEXT NOT NULL,
    object     TEXT NOT NULL,
    bytes      BIGINT NOT NULL CHECK (bytes >= 0),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, object)
);

-- +goose Down
DROP TABLE storage_objects;
DROP TABLE storage_reservations;
DROP TABLE storage_accounts;
