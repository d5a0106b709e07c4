package videos_test

import (
	"crypto/sha1" //nolint:gosec // the tus checksum extension's algorithm
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
)

func sha1Of(b []byte) string {
	s := sha1.Sum(b) //nolint:gosec // see the import
	return "sha1 " + base64.StdEncoding.EncodeToString(s[:])
}

func sha256Of(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256 " + base64.StdEncoding.EncodeToString(s[:])
}

// The tus checksum extension (issue 20: Upload-Checksum was ignored): a
// chunk whose digest matches is appended, one that does not is refused
// with 460 and the offset does not move, an algorithm not offered is 400.
func TestTusChecksum(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		clip := testVideo(t, 1, 64, 48)
		ann := e.user("user")
		opt := e.do("OPTIONS", "/api/v1/uploads", "", nil)
		if !strings.Contains(opt.header.Get("Tus-Extension"), "checksum") || opt.header.Get("Tus-Checksum-Algorithm") != "sha1,sha256" {
			t.Fatalf("discovery: %v", opt.header)
		}
		c := e.tusCreate(ann, len(clip), tusMeta("title", "checked"))
		loc := c.header.Get("Location")
		patch := func(offset int, chunk []byte, checksum string) resp {
			t.Helper()
			return e.do("PATCH", loc, ann.token, chunk, "Tus-Resumable", "1.0.0", "Upload-Offset", strconv.Itoa(offset),
				"Content-Type", "application/offset+octet-stream", "Upload-Checksum", checksum)
		}
		wantOffset := func(want int) {
			t.Helper()
			if off, r := e.tusOffset(ann, loc); r.status != 200 || off != want {
				t.Fatalf("offset %d (%d), want %d", off, r.status, want)
			}
		}
		half := len(clip) / 2
		if r := patch(0, clip[:100], sha1Of(clip[:100])); r.status != 204 || r.header.Get("Upload-Offset") != "100" {
			t.Fatalf("good sha1: %d %v %s", r.status, r.header, r.raw)
		}
		// A chunk corrupted on the way: 460, nothing kept.
		bad := append([]byte(nil), clip[100:half]...)
		bad[7] ^= 0xff
		if r := patch(100, bad, sha256Of(clip[100:half])); r.status != 460 || r.code() != "checksum_mismatch" {
			t.Fatalf("bad sha256: %d %s", r.status, r.raw)
		}
		wantOffset(100)
		for _, c := range []struct{ header, code string }{
			{"md5 " + base64.StdEncoding.EncodeToString(make([]byte, 16)), "checksum_algorithm_unsupported"},
			{"SHA1 " + base64.StdEncoding.EncodeToString(make([]byte, 20)), "checksum_algorithm_unsupported"},
			{"sha256 !!!", "invalid_checksum"},
			{"sha256 " + base64.StdEncoding.EncodeToString(make([]byte, 20)), "invalid_checksum"}, // a sha1's length
			{"sha256", "invalid_checksum"},
		} {
			if r := patch(100, clip[100:half], c.header); r.status != 400 || r.code() != c.code {
				t.Fatalf("%q: %d %s", c.header, r.status, r.raw)
			}
		}
		wantOffset(100)
		if r := patch(100, clip[100:half], sha256Of(clip[100:half])); r.status != 204 {
			t.Fatalf("good sha256: %d %s", r.status, r.raw)
		}
		// Without the header, as before; then the last chunk, checked.
		if r := e.tusPatch(ann, loc, half, clip[half:half+10]); r.status != 204 {
			t.Fatalf("unchecked chunk: %d %s", r.status, r.raw)
		}
		r := patch(half+10, clip[half+10:], sha1Of(clip[half+10:]))
		if r.status != 204 || r.header.Get("Reel-Video-Id") == "" {
			t.Fatalf("last chunk: %d %v %s", r.status, r.header, r.raw)
		}
		e.cutPosters()
		e.noLeaks(t, 1)
	})
}
