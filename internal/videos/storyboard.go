package videos

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/reel-video/reel/internal/media"
)

// Storyboard makes a video's storyboard: a sprite sheet of thumbnails
// (storyboard.jpg) and the WebVTT file that maps times to its tiles
// (storyboard.vtt), stored and charged like the renditions. A video
// whose storyboard exists is left alone; one whose owner's quota has no
// room for it goes without (its storyboard_url stays null). Errors are
// those of Transcode.
func (s *Service) Storyboard(ctx context.Context, id string) error {
	if s.tools == nil {
		return ErrNoTranscoder
	}
	r, err := s.workable(ctx, id)
	if err != nil || r.Storyboard {
		return err
	}
	ctx, stop := s.watch(ctx, id)
	defer stop()
	return s.cause(ctx, s.storyboard(ctx, r))
}

func (s *Service) storyboard(ctx context.Context, r record) error {
	// The smallest rendition, when there is one, is the cheapest file to
	// decode. jobInput reads it from the blob store, unless the upload's
	// spooled copy is still here, which costs no download.
	files, err := s.store.filesOf(ctx, s.db.W, []string{r.ID})
	if err != nil {
		return err
	}
	in := r
	if key := lowestRendition(files[r.ID]); key != "" {
		in.VideoKey = key
	}
	path, done, err := s.jobInput(ctx, in)
	if err != nil {
		return err
	}
	defer done()
	src, err := s.tools.Analyze(ctx, path)
	if errors.Is(err, media.ErrUnsupported) {
		return fmt.Errorf("%w: %w", errUnstreamable, err)
	}
	if err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	sprite, err := s.spoolBytes(nil)
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(sprite) }()
	sb, err := s.tools.Storyboard(ctx, src, sprite)
	if err != nil {
		return fmt.Errorf("storyboard: %w", err)
	}
	vtt, err := sb.VTT(StoryboardSprite)
	if err != nil {
		return fmt.Errorf("storyboard: %w", err)
	}
	vttPath, err := s.spoolBytes(vtt)
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(vttPath) }()
	out := []*derivedFile{
		{Name: StoryboardSprite, Key: blobKey(r.ID, StoryboardSprite), ContentType: spriteContentType, path: sprite},
		{Name: StoryboardFile, Key: blobKey(r.ID, StoryboardFile), ContentType: vttContentType, path: vttPath},
	}
	err = s.storeCharged(ctx, r.OwnerID, out, true)
	if errors.Is(err, errNoRoom) {
		s.log.Info("no room in the quota for a storyboard; the video has none", "video", r.ID)
		return nil
	}
	if err != nil {
		return err
	}
	return s.recordFiles(ctx, r, out, func(ctx context.Context, tx *sql.Tx) error {
		return s.store.setStoryboard(ctx, tx, r.ID, true)
	})
}

// lowestRendition is the key of the smallest rendition file among a
// video's files, "" when there is none.
func lowestRendition(files []derivedFile) string {
	best, key := 0, ""
	for _, f := range files {
		h, err := strconv.Atoi(strings.TrimSuffix(f.Name, ".mp4"))
		if err != nil || !strings.HasSuffix(f.Name, ".mp4") || h <= 0 {
			continue
		}
		if key == "" || h < best {
			best, key = h, f.Key
		}
	}
	return key
}
