package videos

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reel-video/reel/internal/media"
	"github.com/reel-video/reel/internal/platform/blob"
)

// The files of adaptive streaming under /media/<token>/<id>/: the master
// playlist, rendered from the done renditions when the media cache
// learns the video (so each rung appears once it is complete), and the
// stored files (<height>.mp4, <height>.m3u8, storyboard.vtt,
// storyboard.jpg), served like the original.

// memFile is a small file made when the media cache learns a video (the
// master playlist), served like a stored one.
type memFile struct {
	data []byte
	info blob.Info
}

func (m *memFile) open() blob.Object {
	return &memObject{Reader: bytes.NewReader(m.data), info: m.info}
}

// memObject is a memFile opened for serving.
type memObject struct {
	*bytes.Reader
	info blob.Info
}

func (o *memObject) Close() error    { return nil }
func (o *memObject) Info() blob.Info { return o.info }

// streamingFiles adds to p what serving r's streaming files needs: its
// derived files by name, its ladder and its master playlist. A video whose
// streaming has not begun costs no query.
func (s *Service) streamingFiles(ctx context.Context, r record, p *playable) error {
	if (r.StreamingState == streamingPending || r.StreamingState == "") && !r.Storyboard {
		return nil
	}
	ids := []string{r.ID}
	files, err := s.store.filesOf(ctx, s.db.R, ids)
	if err != nil {
		return err
	}
	rends, err := s.store.renditionsOf(ctx, s.db.R, ids)
	if err != nil {
		return err
	}
	p.files = make(map[string]derivedFile, len(files[r.ID]))
	for _, f := range files[r.ID] {
		p.files[f.Name] = f
	}
	p.ladder = map[int]string{}
	var done []rendition
	for _, x := range rends[r.ID] {
		p.ladder[x.Height] = x.State
		if x.State == renditionSkipped {
			p.ladder[x.Height] += ": " + x.Reason
		}
		_, mp4 := p.files[renditionFile(x.Height, ".mp4")]
		_, m3u8 := p.files[renditionFile(x.Height, ".m3u8")]
		if x.State == renditionDone && mp4 && m3u8 {
			done = append(done, x)
		}
	}
	if len(done) > 0 {
		if p.master, err = masterPlaylist(r.ID, done); err != nil {
			return fmt.Errorf("master playlist of %s: %w", r.ID, err)
		}
	}
	return nil
}

// startShort is the short side of the rendition players start with when
// there is one that small: it starts fast on most connections, and a
// player climbs from there (a player starts with the master's first
// variant; the others follow from the lowest up).
const startShort = 480

// masterPlaylist renders the master playlist of the done renditions
// (lowest first): the highest with a short side of at most startShort
// first, then the others from the lowest up.
func masterPlaylist(id string, done []rendition) (*memFile, error) {
	first, mod := 0, int64(0)
	for i, x := range done {
		if min(x.Width, x.Height) <= startShort {
			first = i
		}
		mod = max(mod, x.CreatedAt)
	}
	order := append([]rendition{done[first]}, slices.Delete(slices.Clone(done), first, first+1)...)
	variants := make([]media.Variant, len(order))
	for i, x := range order {
		variants[i] = media.Variant{
			URI: renditionFile(x.Height, ".m3u8"), Bandwidth: x.Bandwidth, AverageBandwidth: x.AverageBandwidth,
			Width: x.Width, Height: x.Height, Codecs: x.Codecs, FrameRate: x.FrameRate,
		}
	}
	data, err := media.MasterPlaylist(variants)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	return &memFile{data: data, info: blob.Info{
		Key: blobKey(id, MasterFile), Size: int64(len(data)), ModTime: fromMicros(mod).Truncate(time.Second),
		ETag: hex.EncodeToString(sum[:16]),
	}}, nil
}

// streamingFile finds a file of adaptive streaming: the master playlist
// (obj), or a stored file (key); a file that is not there is
// ErrFileNotFound with what is missing.
func (p playable) streamingFile(name string) (obj blob.Object, key, ctype string, err error) {
	if name == MasterFile {
		if p.master == nil {
			return nil, "", "", ErrFileNotFound.WithMsg("no rendition is ready yet; play the video's url meanwhile")
		}
		return p.master.open(), "", hlsContentType, nil
	}
	if f, ok := p.files[name]; ok {
		return nil, f.Key, f.ContentType, nil
	}
	return nil, "", "", p.missing(name)
}

// missing says why a streaming file is not there.
func (p playable) missing(name string) error {
	if base, ok := strings.CutSuffix(name, ".mp4"); ok || strings.HasSuffix(name, ".m3u8") {
		if !ok {
			base = strings.TrimSuffix(name, ".m3u8")
		}
		if h, err := strconv.Atoi(base); err == nil && h > 0 && strconv.Itoa(h) == base {
			if state := p.ladder[h]; strings.HasPrefix(state, renditionSkipped) {
				return ErrFileNotFound.WithMsg("rendition " + base + " was " + state)
			}
			return ErrFileNotFound.WithMsg("rendition " + base + " is not ready (or not in this video's ladder)")
		}
	}
	if name == StoryboardFile || name == StoryboardSprite {
		return ErrFileNotFound.WithMsg("the storyboard is not ready yet")
	}
	return ErrFileNotFound.WithMsg("no such file: a video's files are video.<ext>, poster.jpg, " +
		"master.m3u8, <height>.m3u8, <height>.mp4, storyboard.vtt and storyboard.jpg")
}
