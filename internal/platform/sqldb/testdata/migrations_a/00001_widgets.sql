-- +goose Up
CREATE TABLE widgets (
    id   BIGINT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

-- +goose Down
DROP TABLE widgets;
