package videos

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"time"

	"github.com/reel-video/reel/internal/platform/blob"
)

// placeholderJPEG is what a poster URL answers while the video has no
// poster (it is cut after the upload has been answered, or the video went
// without one): a dark 320×180 frame, so that players and the original
// system's web client show an image rather than a broken one. Made with
// ffmpeg -f lavfi -i color=c=0x202020:s=320x180 -frames:v 1 -q:v 31
// -fflags +bitexact -flags:v +bitexact placeholder.jpg
//
//go:embed placeholder.jpg
var placeholderJPEG []byte

var placeholderETag = func() string {
	sum := sha256.Sum256(placeholderJPEG)
	return "placeholder-" + hex.EncodeToString(sum[:8])
}()

// placeholderTime is the placeholder's Last-Modified: fixed, as the image is.
var placeholderTime = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// placeholder is the placeholder image as a blob object.
type placeholder struct{ *bytes.Reader }

func newPlaceholder() blob.Object { return placeholder{bytes.NewReader(placeholderJPEG)} }

func (placeholder) Close() error { return nil }

func (placeholder) Info() blob.Info {
	return blob.Info{Key: PosterFile, Size: int64(len(placeholderJPEG)), ModTime: placeholderTime, ETag: placeholderETag}
}
