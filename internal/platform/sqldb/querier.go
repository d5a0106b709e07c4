package sqldb

import (
	"context"
	"database/sql"
	"strings"
)

// Querier is what *sql.DB and *sql.Tx have in common, so store methods can
// run inside or outside a transaction.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Contains is a LIKE pattern (with ESCAPE '\') matching text that contains
// s: LIKE's own wildcards in s match themselves, so a search for "50%"
// finds "50%" and not every text with "50" in it.
func Contains(s string) string {
	return "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s) + "%"
}
