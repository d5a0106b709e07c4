package videos

import (
	"context"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// maxSearch bounds the text of a title search (a title has at most 200
// characters).
const maxSearch = 800

// ErrBadSearch refuses search text that no title can contain.
var ErrBadSearch = errs.New(errs.Invalid, "invalid_search", "the search text must be plain text of at most 800 bytes")

// Search is Feed restricted to the videos whose title contains text
// (case-insensitive for ASCII letters on both engines, for all letters on
// PostgreSQL); empty text is the whole feed.
func (s *Service) Search(ctx context.Context, text string, req page.Request) (page.Page[Video], error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return s.Feed(ctx, req)
	}
	if len(text) > maxSearch || !utf8.ValidString(text) || strings.ContainsFunc(text, unicode.IsControl) {
		return page.Page[Video]{}, ErrBadSearch
	}
	// The text is a bound parameter; LIKE's wildcards in it are escaped.
	pattern := sqldb.Contains(strings.ToLower(text))
	q := `SELECT ` + videoCols + ` FROM videos WHERE deleted_at IS NULL AND status = 'ready' AND LOWER(title) LIKE $1 ESCAPE '\'`
	args := []any{pattern}
	if !req.After.Zero() {
		q += ` AND (created_at, id) < ($2, $3)`
		args = append(args, req.After.T, req.After.ID)
	}
	q += fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT %d`, req.Limit+1)
	rs, err := s.store.list(ctx, "feed search", q, args...)
	if err != nil {
		return page.Page[Video]{}, err
	}
	vs, err := s.views(ctx, rs)
	if err != nil {
		return page.Page[Video]{}, err
	}
	p := page.Make(vs, req.Limit, videoKey)
	s.events.RecordOrLog(ctx, s.event(ctx, "FETCH_VIDEOS", outbox.Success, "searched the feed").With("count", len(p.Items)).With("q", text))
	return p, nil
}
