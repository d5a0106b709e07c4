package sqldb

import (
	"database/sql"
	"errors"
)

// MaxCachedStmts is maxCachedStmts.
const MaxCachedStmts = maxCachedStmts

// CacheStats reports a SQLite connection's statement cache: the statements
// it has prepared for the cache, and those it holds.
func CacheStats(c *sql.Conn) (prepared, held int, err error) {
	err = c.Raw(func(dc any) error {
		cc, ok := dc.(*cachingConn)
		if !ok {
			return errors.New("not a caching connection")
		}
		prepared, held = cc.prepared, cc.stmts.Len()
		return nil
	})
	return prepared, held, err
}
