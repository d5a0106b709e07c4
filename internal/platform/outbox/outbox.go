package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"testing/fstest"

	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Outbox is one service's outbox table.
type Outbox struct {
	db    *sqldb.DB
	table string
}

var tableName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// New returns the outbox stored in table (e.g. "users_outbox"), which
// Migrations creates.
func New(db *sqldb.DB, table string) *Outbox {
	if !tableName.MatchString(table) {
		panic("outbox: bad table name " + table) // a programming error
	}
	return &Outbox{db: db, table: table}
}

// Add records events through q: pass the transaction of the action they
// describe so that both commit or neither does, or the database's writer
// for an action that writes nothing else (such as a failed login).
func (o *Outbox) Add(ctx context.Context, q sqldb.Querier, events ...Event) error {
	for _, e := range events {
		payload, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("outbox: encode event: %w", err)
		}
		_, err = q.ExecContext(ctx, `INSERT INTO `+o.table+` (id, payload, created_at) VALUES ($1, $2, $3)`,
			e.ID, string(payload), e.OccurredAt.UnixMicro())
		if err != nil {
			return fmt.Errorf("outbox: add %s event: %w", e.Action, err)
		}
	}
	return nil
}

// Migrations returns the schema of an outbox table for the given dialect,
// to be applied with its own goose version table (VersionTable). The
// sequence column orders delivery; claimed_until lets several relays share
// one outbox on SQLite, where FOR UPDATE SKIP LOCKED does not exist.
func Migrations(table string, d sqldb.Dialect) fs.FS {
	seq := "seq INTEGER PRIMARY KEY AUTOINCREMENT"
	if d == sqldb.Postgres {
		seq = "seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
	}
	up := fmt.Sprintf(`-- +goose Up
CREATE TABLE %[1]s (
    %[2]s,
    id            TEXT NOT NULL UNIQUE,
    payload       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    claimed_until BIGINT NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE %[1]s;
`, table, seq)
	return fstest.MapFS{"00001_outbox.sql": &fstest.MapFile{Data: []byte(up)}}
}

// VersionTable is the goose version table of an outbox table.
func VersionTable(table string) string { return table + "_schema_version" }
