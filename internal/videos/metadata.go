package videos

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/text"
)

// Meta is what an uploader says about a video.
type Meta struct {
	Title, Description, Filename string
}

// Title and description limits, in characters.
const (
	MaxTitle       = 200
	MaxDescription = 5000
	maxFilename    = 255
)

// Validate checks and normalises the metadata (titles are trimmed).
func (m Meta) Validate() (Meta, error) {
	fields := map[string]string{}
	m.Title = strings.TrimSpace(m.Title)
	if msg := checkText(m.Title, 1, MaxTitle); msg != "" {
		fields["title"] = msg
	}
	m.Description = strings.TrimSpace(m.Description)
	if msg := checkText(m.Description, 0, MaxDescription); msg != "" {
		fields["description"] = msg
	}
	m.Filename = cleanFilename(m.Filename)
	if len(fields) > 0 {
		return m, ErrValidation.WithFields(fields)
	}
	return m, nil
}

func checkText(s string, minLen, maxLen int) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	n := utf8.RuneCountInString(s)
	if n < minLen {
		return "is required"
	}
	if n > maxLen {
		return fmt.Sprintf("must be at most %d characters", maxLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' {
			return "must not contain control characters"
		}
		if text.Deceptive(r) {
			return "must not contain invisible formatting characters (zero-width or direction marks)"
		}
	}
	return ""
}

// cleanFilename keeps the base name a browser sent, without directories or
// control characters; it is only ever displayed.
func cleanFilename(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, name)
	for len(name) > maxFilename {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return strings.TrimSpace(name)
}

// Patch is a change of a video's metadata; nil fields stay as they are.
type Patch struct {
	Title, Description *string
}

// Update changes a video's title or description (owner or admin).
func (s *Service) Update(ctx context.Context, c authn.Caller, id string, p Patch) (Video, error) {
	r, err := s.owned(ctx, c, id)
	if err != nil {
		return Video{}, err
	}
	if r.DeletedAt != nil {
		return Video{}, ErrVideoNotFound
	}
	m := Meta{Title: r.Title, Description: r.Description}
	if p.Title != nil {
		m.Title = *p.Title
	}
	if p.Description != nil {
		m.Description = *p.Description
	}
	if m, err = m.Validate(); err != nil {
		return Video{}, err
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		done, err := s.store.updateVideo(ctx, tx, id, m.Title, m.Description, micros(s.now()))
		if err != nil {
			return err
		}
		if !done {
			return ErrVideoNotFound
		}
		e := s.event(ctx, "UPDATE_VIDEO", outbox.Success, "updated video "+quote(m.Title)).On(id).With("owner_id", r.OwnerID)
		return s.events.Add(ctx, tx, e)
	})
	if err != nil {
		return Video{}, fmt.Errorf("update video: %w", err)
	}
	s.changed(id)
	r.Title, r.Description = m.Title, m.Description
	return s.view(ctx, r)
}
