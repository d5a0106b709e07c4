-- +goose Up
-- The activity log. Times are Unix microseconds (BIGINT), as in every reel
-- table; metadata is a JSON object kept as TEXT, which both engines store
-- and return unchanged.
CREATE TABLE log_events (
    id          TEXT PRIMARY KEY, -- the producer's event id (UUIDv7): ingest is idempotent on it
    occurred_at BIGINT NOT NULL,
    user_id     TEXT,
    action      TEXT NOT NULL,
    service     TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    description TEXT NOT NULL,
    target_id   TEXT,
    request_id  TEXT NOT NULL,
    ip          TEXT NOT NULL,
    user_agent  TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    ingested_at BIGINT NOT NULL -- when the logs service received it; minus occurred_at, the delivery delay
);

-- Every list is newest first by (occurred_at, id) and pages with a keyset
-- on that pair, so each index ends with it: a filter on the leading column
-- then reads one index range in order and stops after a page, however many
-- millions of events there are.
CREATE INDEX log_events_time ON log_events (occurred_at, id);
CREATE INDEX log_events_user ON log_events (user_id, occurred_at, id);
CREATE INDEX log_events_action ON log_events (action, occurred_at, id);
-- Failures and denials are rare, so a search for them needs an index;
-- successes are most events, so a search for them pages quickly along
-- log_events_time. A partial index serves the first without slowing ingest
-- of the second. Queries repeat the predicate word for word so that both
-- engines' planners see that the index applies.
CREATE INDEX log_events_unsuccessful ON log_events (outcome, occurred_at, id) WHERE outcome <> 'success';
-- Filters on service alone walk log_events_time: each service has a large
-- share of the events, so a page fills quickly, and one index fewer keeps
-- ingest fast.

-- +goose Down
DROP TABLE log_events;
