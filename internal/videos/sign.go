package videos

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

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

// verify checks a token for videoID at now and returns its viewer. Any
// malformed or forged token is ErrBadSignature; a genuine one past its
// expiry is ErrURLExpired.
func (s *signer) verify(token, videoID string, now time.Time) (string, error) {
	if len(token) > maxTokenLen {
		return "", ErrBadSignature
	}
	expS, rest, ok := strings.Cut(token, ".")
	if !ok {
		return "", ErrBadSignature
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 {
		return "", ErrBadSignature
	}
	viewer, sigS := rest[:i], rest[i+1:]
	exp, err := strconv.ParseInt(expS, 10, 64)
	if err != nil || exp <= 0 {
		return "", ErrBadSignature
	}
	sig, err := base64.RawURLEncoding.DecodeString(sigS)
	if err != nil || !hmac.Equal(sig, s.mac(videoID, viewer, exp)) {
		return "", ErrBadSignature
	}
	// Checked after the MAC, so that only a genuine token learns that it
	// expired.
	if now.Unix() >= exp {
		return "", ErrURLExpired
	}
	return viewer, nil
}
