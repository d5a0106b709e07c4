-- +goose Up
CREATE TABLE widget_parts (
    widget_id BIGINT NOT NULL REFERENCES widgets (id),
    part      TEXT NOT NULL,
    PRIMARY KEY (widget_id, part)
);

-- +goose Down
DROP TABLE widget_parts;
