-- +goose Up
-- One row per user and UTC day with any activity. day is 'YYYY-MM-DD',
-- which sorts and compares as text on both engines. The upload counters
-- are decided by one conditional UPDATE of this row (see the storage
-- service's accounts for why that is atomic on both engines).
CREATE TABLE usage_days (
    user_id         TEXT NOT NULL,
    day             TEXT NOT NULL,
    upload_used     BIGINT NOT NULL DEFAULT 0 CHECK (upload_used >= 0),
    upload_reserved BIGINT NOT NULL DEFAULT 0 CHECK (upload_reserved >= 0),
    egress_used     BIGINT NOT NULL DEFAULT 0 CHECK (egress_used >= 0),
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, day)
);

-- Per-user overrides; NULL means the configured default, -1 unlimited.
CREATE TABLE usage_limits (
    user_id      TEXT PRIMARY KEY,
    daily_upload BIGINT CHECK (daily_upload IS NULL OR daily_upload >= -1),
    daily_egress BIGINT CHECK (daily_egress IS NULL OR daily_egress >= -1),
    updated_at   BIGINT NOT NULL
);

-- Upload reservations count on the day the upload started.
CREATE TABLE usage_reservations (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    day        TEXT NOT NULL,
    bytes      BIGINT NOT NULL CHECK (bytes >= 0),
    state      TEXT NOT NULL CHECK (state IN ('held', 'committed', 'released', 'expired')),
    actual     BIGINT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    settled_at BIGINT
);
CREATE INDEX usage_reservations_held ON usage_reservations (expires_at) WHERE state = 'held';
CREATE INDEX usage_reservations_settled ON usage_reservations (settled_at) WHERE state <> 'held';

-- Ids of egress batches already added, so that a batch retried after a
-- lost answer is not counted twice. Kept for two days.
CREATE TABLE usage_egress_batches (
    id         TEXT PRIMARY KEY,
    applied_at BIGINT NOT NULL
);
CREATE INDEX usage_egress_batches_applied ON usage_egress_batches (applied_at);

-- +goose Down
DROP TABLE usage_egress_batches;
DROP TABLE usage_reservations;
DROP TABLE usage_limits;
DROP TABLE usage_days;
