package videos

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/page"
)

func (r record) visibleTo(c authn.Caller) bool {
	if c.UserID == r.OwnerID || c.IsAdmin() {
		return true
	}
	return r.Status == StatusReady && r.DeletedAt == nil
}

func (r record) public() Video {
	v := r.Video
	r.streaming(&v)
	return v
}

// Get returns a video: anyone authenticated sees a ready video that is not
// in the trash; its owner and admins see it in every state.
func (s *Service) Get(ctx context.Context, c authn.Caller, id string) (Video, error) {
	r, err := s.viewed(ctx, id)
	if err != nil {
		return Video{}, err
	}
	if !r.visibleTo(c) {
		return Video{}, ErrVideoNotFound
	}
	return r.public(), nil
}

// viewed is the video id with its renditions, as Get shows it, from the
// records read less than recordTTL ago (feedcache.go).
func (s *Service) viewed(ctx context.Context, id string) (record, error) {
	now := s.now()
	r, ok, gen := s.records.get(id, now)
	if ok {
		return r, nil
	}
	r, err := s.load(ctx, id)
	if err != nil {
		return record{}, err
	}
	if r, err = s.withRenditions(ctx, r); err != nil {
		return record{}, err
	}
	s.records.put(id, r, gen, now)
	return r, nil
}

func (s *Service) load(ctx context.Context, id string) (record, error) {
	if !validID(id) {
		return record{}, ErrVideoNotFound
	}
	return s.store.video(ctx, s.db.R, id)
}

// validID accepts canonical UUIDs only, so a malformed id is a plain 404
// rather than a database round trip.
func validID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && u.String() == id
}

// owned loads a video the caller may change: its owner's or any, for an
// admin. Others get ErrVideoNotFound, as for a video that does not exist.
func (s *Service) owned(ctx context.Context, c authn.Caller, id string) (record, error) {
	r, err := s.load(ctx, id)
	if err != nil {
		return record{}, err
	}
	if r.OwnerID != c.UserID && !c.IsAdmin() {
		return record{}, ErrVideoNotFound
	}
	return r, nil
}

func videoKey(v Video) page.Cursor { return page.Cursor{T: micros(v.CreatedAt), ID: v.ID} }

// Feed lists everyone's ready videos that are not in the trash, newest
// first.
func (s *Service) Feed(ctx context.Context, req page.Request) (page.Page[Video], error) {
	read := func(ctx context.Context) ([]Video, error) {
		rs, err := s.store.feed(ctx, req)
		if err != nil {
			return nil, err
		}
		return s.views(ctx, rs)
	}
	var (
		vs  []Video
		err error
	)
	if req.After.Zero() {
		vs, err = s.feed.get(ctx, req.Limit, s.now(), read) // feedcache.go
	} else {
		vs, err = read(ctx)
	}
	if err != nil {
		return page.Page[Video]{}, err
	}
	p := page.Make(vs, req.Limit, videoKey)
	s.events.RecordOrLog(ctx, s.event(ctx, "FETCH_VIDEOS", outbox.Success, "listed the feed").With("count", len(p.Items)))
	return p, nil
}

// Mine lists the caller's videos in every state but deleted, newest first.
func (s *Service) Mine(ctx context.Context, c authn.Caller, req page.Request) (page.Page[Video], error) {
	rs, err := s.store.mine(ctx, c.UserID, req)
	if err != nil {
		return page.Page[Video]{}, err
	}
	vs, err := s.views(ctx, rs)
	if err != nil {
		return page.Page[Video]{}, err
	}
	p := page.Make(vs, req.Limit, videoKey)
	s.events.RecordOrLog(ctx, s.event(ctx, "FETCH_VIDEOS", outbox.Success, "listed own videos").With("count", len(p.Items)))
	return p, nil
}

// Numbered is a page of videos by position with the total, for clients
// that page by number (the original system's).
type Numbered struct {
	Items []Video
	Total int
}

// maxPosition bounds how deep a numbered listing may start: a position
// costs the database a scan of every row before it, so a client may not
// ask for the millionth row. Cursor listings (Feed, Mine) have no bound.
const maxPosition = 100_000

// maxNumberedLimit bounds the page size of a numbered listing.
const maxNumberedLimit = 100

// ErrPositionTooFar refuses a numbered listing that starts too deep.
var ErrPositionTooFar = errs.New(errs.Invalid, "position_too_far",
	fmt.Sprintf("a listing by position may start at most at %d; page with the cursor API instead", maxPosition))

// FeedAt lists the ready videos of every user by position, newest first.
func (s *Service) FeedAt(ctx context.Context, offset, limit int) (Numbered, error) {
	return s.readyAt(ctx, "", offset, limit, "listed the feed")
}

// MineAt lists the caller's ready videos by position, newest first.
func (s *Service) MineAt(ctx context.Context, c authn.Caller, offset, limit int) (Numbered, error) {
	return s.readyAt(ctx, c.UserID, offset, limit, "listed own videos")
}

func (s *Service) readyAt(ctx context.Context, owner string, offset, limit int, what string) (Numbered, error) {
	if offset < 0 || offset > maxPosition {
		return Numbered{}, ErrPositionTooFar
	}
	limit = min(max(limit, 1), maxNumberedLimit)
	rs, total, err := s.store.readyAt(ctx, owner, offset, limit)
	if err != nil {
		return Numbered{}, err
	}
	vs, err := s.views(ctx, rs)
	if err != nil {
		return Numbered{}, err
	}
	s.events.RecordOrLog(ctx, s.event(ctx, "FETCH_VIDEOS", outbox.Success, what).With("count", len(rs)))
	return Numbered{Items: vs, Total: total}, nil
}
