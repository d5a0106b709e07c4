package videos

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/outbox"
)

// Grant is a playback grant: signed media paths for one viewer and video.
type Grant struct {
	VideoPath string
	// PosterPath always answers an image: the poster, or a placeholder
	// until the poster is there (or for good, if the video went without).
	PosterPath string
	ExpiresAt  time.Time
	// HLSPath is the master playlist, empty until a rendition is done;
	// StoryboardPath the storyboard's WebVTT file, empty until it is made.
	HLSPath, StoryboardPath string
	// Renditions are the done renditions, lowest first, each a file that
	// plays in a plain <video src> with seeking.
	Renditions []GrantRendition
}

// GrantRendition is a rendition in a playback grant.
type GrantRendition struct {
	Height, Width int
	Bandwidth     int64
	Path          string
}

// Playback grants the caller signed URLs (paths under /media) for a video
// they can see, valid for the configured PlaybackTTL, and records
// STREAM_VIDEO once for the grant.
func (s *Service) Playback(ctx context.Context, c authn.Caller, id string) (Grant, error) {
	v, err := s.Get(ctx, c, id)
	if err != nil {
		return Grant{}, err
	}
	return s.Play(ctx, c, v)
}

// Play is Playback for a video this service has just given the caller
// (Get), without reading it again: the watch page shows the video and
// plays it.
func (s *Service) Play(ctx context.Context, c authn.Caller, v Video) (Grant, error) {
	g, err := s.Sign(c, v)
	if err != nil {
		return Grant{}, err
	}
	s.events.RecordOrLog(ctx, s.event(ctx, "STREAM_VIDEO", outbox.Success, "started playback of "+quote(v.Title)).On(v.ID).
		With("owner_id", v.OwnerID).With("expires_at", g.ExpiresAt.Format(time.RFC3339)))
	return g, nil
}

// Sign grants the caller signed URLs for a video this service has just
// given them (from a listing), without reading it again and without
// recording STREAM_VIDEO: a listing that carries playable URLs, as the
// original system's did, is not a playback. A video that is not ready or
// is in the trash cannot be played: ErrVideoNotFound.
func (s *Service) Sign(c authn.Caller, v Video) (Grant, error) {
	if v.Status != StatusReady || v.DeletedAt != nil || !validID(v.ID) {
		return Grant{}, ErrVideoNotFound
	}
	exp := s.now().Add(s.cfg.PlaybackTTL).Truncate(time.Second).UTC()
	token := s.signer.token(v.ID, c.UserID, exp)
	g := Grant{
		VideoPath:  MediaPath(token, v.ID, VideoFile(v.ContentType)),
		PosterPath: MediaPath(token, v.ID, PosterFile),
		ExpiresAt:  exp,
	}
	for _, r := range v.renditions {
		g.Renditions = append(g.Renditions, GrantRendition{Height: r.Height, Width: r.Width, Bandwidth: r.Bandwidth,
			Path: MediaPath(token, v.ID, renditionFile(r.Height, ".mp4"))})
	}
	if len(g.Renditions) > 0 {
		g.HLSPath = MediaPath(token, v.ID, MasterFile)
	}
	if v.storyboard {
		g.StoryboardPath = MediaPath(token, v.ID, StoryboardFile)
	}
	return g, nil
}

// MediaPath is the path of a file of a video under a playback token.
func MediaPath(token, videoID, file string) string {
	return "/media/" + token + "/" + videoID + "/" + file
}

// Media is a file of a video opened for serving to a viewer.
type Media struct {
	blob.Object
	ContentType string
	Viewer      string
	// Allowance is what the viewer may still receive today, -1 for no
	// limit; never 0 (a spent allowance is ErrEgressLimit).
	Allowance int64
	// Placeholder marks the placeholder image, answered for a poster that
	// is not there: it must not be cached, or the real one would not show.
	// It is not the video's: its bytes are not counted as egress.
	Placeholder bool
	egress      Egress
}

// Delivered counts n bytes sent to the viewer as their egress.
func (m *Media) Delivered(n int64) {
	if n > 0 && m.egress != nil {
		m.egress.Add(m.Viewer, n)
	}
}

// OpenMedia checks a media token, opens the named file (the video under
// any "video.*" name, the poster as "poster.jpg" or the ".jpg" sibling of
// the video's name, as the original system's clients derive it, and the
// files of adaptive streaming: master.m3u8, <height>.m3u8, <height>.mp4,
// storyboard.vtt, storyboard.jpg) and tells what its viewer may still
// receive today. A poster that is not there yet (or never will be) is the
// placeholder image. A bad token is ErrBadSignature or ErrURLExpired
// (403); a video that is no longer playable (trashed, purged) is
// ErrVideoNotFound, a file it does not have ErrFileNotFound (404 both); a
// viewer whose daily allowance is spent gets ErrEgressLimit (429, until
// the next UTC day).
func (s *Service) OpenMedia(ctx context.Context, token, id, file string, admit ViewerCheck) (*Media, error) {
	now := s.now()
	viewer, exp, err := s.signer.verify(token, id, now)
	if err != nil {
		return nil, err
	}
	// The viewer's account as it stands now: a URL outlives its grant by
	// hours, and a disabled viewer's must stop within seconds, like the
	// viewer's tokens. The URL was issued a PlaybackTTL before it expires
	// (as long as the TTL was not changed meanwhile).
	if admit != nil {
		if err := admit(ctx, viewer, exp.Add(-s.cfg.PlaybackTTL)); err != nil {
			if errors.Is(err, authn.ErrRevoked) {
				return nil, ErrURLRevoked
			}
			return nil, err
		}
	}
	p, err := s.playable(ctx, id, now)
	if err != nil {
		return nil, err
	}
	key, ctype, poster := p.videoKey, p.contentType, false
	var obj blob.Object
	switch {
	case file == PosterFile || (strings.HasPrefix(file, "video.") && strings.HasSuffix(file, ".jpg")):
		key, ctype, poster = p.posterKey, "image/jpeg", true
	case strings.HasPrefix(file, "video."):
	default:
		// The files of adaptive streaming (media_files.go).
		if obj, key, ctype, err = p.streamingFile(file); err != nil {
			return nil, err
		}
	}
	if obj == nil && key != "" {
		obj, err = s.blobs.Open(ctx, key)
	}
	switch {
	case obj != nil && err == nil:
	case poster && (key == "" || errors.Is(err, blob.ErrNotFound)):
		// Not cut yet, or the video went without (a poster key whose
		// blob is gone is a purge racing this request).
		obj, err = newPlaceholder(), nil
	case key == "", errors.Is(err, blob.ErrNotFound):
		return nil, ErrFileNotFound
	case err != nil:
		return nil, fmt.Errorf("open media: %w", err)
	}
	if _, ok := obj.(placeholder); ok {
		// Not the video's bytes: neither metered nor refused.
		return &Media{Object: obj, ContentType: ctype, Viewer: viewer, Allowance: -1, Placeholder: true}, nil
	}
	allowance, err := s.egress.Allowance(ctx, viewer)
	if err == nil && (allowance == 0 || allowance < -1) {
		err = egressLimit(s.now())
	} else if err != nil {
		err = fmt.Errorf("egress allowance: %w", err)
	}
	if err != nil {
		_ = obj.Close()
		return nil, err
	}
	return &Media{Object: obj, ContentType: ctype, Viewer: viewer, Allowance: allowance, egress: s.egress}, nil
}

// ViewerCheck checks that viewer, as the account stands now, may still use
// a media URL issued at issued (authn.Verifier.Admit, whose role is not
// needed here).
type ViewerCheck func(ctx context.Context, viewer string, issued time.Time) error

// egressLimit is ErrEgressLimit with the time until the next UTC day.
func egressLimit(now time.Time) error {
	now = now.UTC()
	next := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
	return ErrEgressLimit.WithRetryAfter(next.Sub(now))
}

// playable returns what serving a ready video that is not in the trash
// needs, from the media cache or the database; any other video is
// ErrVideoNotFound (and not cached).
func (s *Service) playable(ctx context.Context, id string, now time.Time) (playable, error) {
	p, ok, gen := s.media.get(id, now)
	if ok {
		return p, nil
	}
	r, err := s.load(ctx, id)
	if err != nil {
		return playable{}, err
	}
	if r.Status != StatusReady || r.DeletedAt != nil {
		return playable{}, ErrVideoNotFound
	}
	p = playable{videoKey: r.VideoKey, posterKey: r.PosterKey, contentType: r.ContentType}
	if err := s.streamingFiles(ctx, r, &p); err != nil {
		return playable{}, err
	}
	s.media.put(id, p, gen, now)
	return p, nil
}

// signer makes and checks media tokens. A token binds a viewer, a video
// and an expiry, not a file name, so that every file of the video (the
// bytes, the poster, later HLS renditions under relative paths) is
// reachable with one grant:
//
//	<expiry, Unix seconds>.<viewer id>.<base64url HMAC-SHA256>
//
// The MAC covers a version label, the video id, the viewer id and the
// expiry; the video id comes from the path, so a token for one video does
// not open another.
type signer struct {
	key []byte
	// macs holds HMAC-SHA256 states under key: Reset brings one back to
	// the keyed start, sparing the key schedule every range request paid.
	macs sync.Pool
}

// tokenLabel versions the MAC input, so a future token format cannot be
// confused with this one.
const tokenLabel = "reel-media-v1"

// maxTokenLen bounds what verify looks at: a real token is about 90 bytes.
const maxTokenLen = 256

func (s *signer) mac(videoID, viewer string, exp int64) []byte {
	m, ok := s.macs.Get().(hash.Hash)
	if !ok {
		m = hmac.New(sha256.New, s.key)
	}
	m.Reset()
	m.Write([]byte(tokenLabel + "\x00" + videoID + "\x00" + viewer + "\x00" + strconv.FormatInt(exp, 10)))
	sum := m.Sum(nil)
	s.macs.Put(m)
	return sum
}

func (s *signer) token(videoID, viewer string, exp time.Time) string {
	e := exp.Unix()
	return strconv.FormatInt(e, 10) + "." + viewer + "." + base64.RawURLEncoding.EncodeToString(s.mac(videoID, viewer, e))
}

// verify checks a token for videoID at now and returns its viewer and
// expiry. Any malformed or forged token is ErrBadSignature; a genuine one
// past its expiry is ErrURLExpired.
func (s *signer) verify(token, videoID string, now time.Time) (viewer string, expires time.Time, err error) {
	if len(token) > maxTokenLen {
		return "", time.Time{}, ErrBadSignature
	}
	expS, rest, ok := strings.Cut(token, ".")
	if !ok {
		return "", time.Time{}, ErrBadSignature
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 {
		return "", time.Time{}, ErrBadSignature
	}
	viewer, sigS := rest[:i], rest[i+1:]
	// Only the spelling the signer writes is accepted ("0123" or "+123"
	// would carry the same MAC, and a base64 tail with stray bits the same
	// signature), so that a grant has one URL: one cache entry, one thing
	// to log.
	exp, err := strconv.ParseInt(expS, 10, 64)
	if err != nil || exp <= 0 || strconv.FormatInt(exp, 10) != expS {
		return "", time.Time{}, ErrBadSignature
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(sigS)
	if err != nil || !hmac.Equal(sig, s.mac(videoID, viewer, exp)) {
		return "", time.Time{}, ErrBadSignature
	}
	// Checked after the MAC, so that only a genuine token learns that it
	// expired.
	if now.Unix() >= exp {
		return "", time.Time{}, ErrURLExpired
	}
	return viewer, time.Unix(exp, 0), nil
}
