// Package page implements the cursor pagination every list in reel uses:
// newest first by (time, id), which stays stable while rows are inserted,
// unlike offsets.
package page

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/reel-video/reel/internal/platform/errs"
)

// Cursor points just past the last item of a page.
type Cursor struct {
	T  int64  // the item's time key (Unix microseconds)
	ID string // the item's id, breaking ties
}

// Zero reports whether c is the start of the list.
func (c Cursor) Zero() bool { return c.ID == "" }

// Encode renders c as an opaque URL-safe string.
func (c Cursor) Encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.T, 10) + "|" + c.ID))
}

// Decode parses a cursor; the empty string is the start.
func Decode(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	if len(s) > 256 {
		return Cursor{}, errs.ErrBadCursor
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, errs.ErrBadCursor
	}
	ts, id, ok := strings.Cut(string(b), "|")
	t, err := strconv.ParseInt(ts, 10, 64)
	// Ids are stored as text: one with a NUL byte or invalid UTF-8 could
	// not match any row, and PostgreSQL refuses such text outright.
	if !ok || err != nil || id == "" || !utf8.ValidString(id) || strings.ContainsFunc(id, unicode.IsControl) {
		return Cursor{}, errs.ErrBadCursor
	}
	return Cursor{T: t, ID: id}, nil
}

// ErrBadLimit is returned for a limit that is not a positive integer.
var ErrBadLimit = errs.New(errs.Invalid, "invalid_limit", "limit must be a positive whole number")

// Limit parses a limit query value: def when empty, capped at max.
func Limit(raw string, def, max int) (int, error) {
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		return 0, ErrBadLimit
	}
	if n > max {
		n = max
	}
	return n, nil
}

// Page is one page of a list, as the API returns it.
type Page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// Make builds a page from up to limit+1 fetched items: the extra item only
// signals that there is more. key returns an item's cursor.
func Make[T any](items []T, limit int, key func(T) Cursor) Page[T] {
	p := Page[T]{Items: items}
	if p.Items == nil {
		p.Items = []T{}
	}
	if len(items) > limit {
		p.Items = items[:limit]
		c := key(items[limit-1]).Encode()
		p.NextCursor = &c
	}
	return p
}

// Request is a parsed page request.
type Request struct {
	After Cursor
	Limit int
}

// Parse parses the cursor and limit query values.
func Parse(cursor, limit string, def, max int) (Request, error) {
	c, err := Decode(cursor)
	if err != nil {
		return Request{}, fmt.Errorf("page: %w", err)
	}
	n, err := Limit(limit, def, max)
	if err != nil {
		return Request{}, fmt.Errorf("page: %w", err)
	}
	return Request{After: c, Limit: n}, nil
}
