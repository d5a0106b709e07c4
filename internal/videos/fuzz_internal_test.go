package videos

import (
	"bytes"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/errs"
)

// FuzzMediaRange: mediaRange never panics, keeps its answer about as long
// as the header (no allocation a header can blow up), is idempotent, and
// what ServeContent makes of its answer is a 200, 206 or 416, the whole
// file for a unit other than bytes, and at most one chunk for a lone
// open-ended range.
func FuzzMediaRange(f *testing.F) {
	for _, h := range []string{"bytes=0-", "bytes=0-99", "bytes=-500", "bytes=-0", "bytes=100-", "bytes=0-0,-1",
		"bytes=-0,-0", "BYTES = 5-", "items=0-5", "bytes=", "bytes=5-1", "bytes=1-2,3-4,5-6", "bytes= -0 , ",
		"bytes=99999999999999999999-", "bytes=0-,", "=", "bytes=-", "bytes=1--2"} {
		f.Add(h, int64(1000), int64(64))
	}
	f.Fuzz(func(t *testing.T, h string, size, chunk int64) {
		size, chunk = bounded(size, 4096), 1+bounded(chunk, 1024)
		out := mediaRange(h, size, chunk)
		if out != "" && !strings.HasPrefix(out, "bytes=") {
			t.Fatalf("mediaRange(%q) = %q", h, out)
		}
		if len(out) > len(h)+64 {
			t.Fatalf("mediaRange(%q) = %d bytes", h, len(out))
		}
		if out != "" {
			if again := mediaRange(out, size, chunk); again != out {
				t.Fatalf("mediaRange(%q) = %q, then %q", h, out, again)
			}
		}

		content := bytes.Repeat([]byte("0123456789abcdef"), int(size/16)+1)[:size]
		r := httptest.NewRequest(http.MethodGet, "/media/x", nil)
		if out != "" {
			r.Header.Set("Range", out)
		}
		w := httptest.NewRecorder()
		http.ServeContent(w, r, "", time.Unix(1, 0), bytes.NewReader(content))
		switch w.Code {
		case http.StatusOK:
			if w.Body.Len() != int(size) {
				t.Fatalf("Range %q: 200 with %d of %d bytes", h, w.Body.Len(), size)
			}
		case http.StatusPartialContent, http.StatusRequestedRangeNotSatisfiable:
			if out == "" {
				t.Fatalf("Range %q: %d without a range", h, w.Code)
			}
		default:
			t.Fatalf("Range %q (as %q): status %d", h, out, w.Code)
		}
		if unit, _, _ := strings.Cut(strings.TrimSpace(h), "="); !strings.EqualFold(strings.TrimSpace(unit), "bytes") && w.Code != http.StatusOK {
			t.Fatalf("Range %q of another unit: status %d", h, w.Code)
		}
		if n, ok := loneOpenRange(h); ok && n < size && w.Code == http.StatusPartialContent && int64(w.Body.Len()) > chunk {
			t.Fatalf("Range %q: %d bytes, over the chunk %d", h, w.Body.Len(), chunk)
		}
	})
}

// bounded maps any int64 into [0, n).
func bounded(v, n int64) int64 {
	if v < 0 {
		v = -(v + 1)
	}
	return v % n
}

// loneOpenRange is N for a Range header that asks for one range "N-".
func loneOpenRange(h string) (int64, bool) {
	unit, set, ok := strings.Cut(strings.TrimSpace(h), "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") || strings.Contains(set, ",") {
		return 0, false
	}
	first, last, ok := strings.Cut(strings.TrimSpace(set), "-")
	if !ok || strings.TrimSpace(last) != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(first), 10, 64)
	return n, err == nil && n >= 0
}

// FuzzMediaToken: any token a client puts in a /media path is refused as
// ErrBadSignature or ErrURLExpired (403), and one that is accepted is
// exactly the token the signer makes for its video, viewer and expiry;
// a token the signer makes opens its video, for its viewer, and no other.
func FuzzMediaToken(f *testing.F) {
	s := &signer{key: []byte("0123456789abcdef0123456789abcdef")}
	now := time.Unix(1_800_000_000, 0)
	const video = "0191e7a4-0000-7000-8000-000000000000"
	good := s.token(video, "0191e7a4-0000-7000-8000-000000000001", now.Add(time.Hour))
	for _, tok := range []string{good, "0" + good, "+" + good, good + "=", good[:len(good)-1], s.token(video, "v", now.Add(-time.Second)),
		"", ".", "..", "1.a.", "-1.a.b", "99999999999999999999.a.b", strings.Repeat("1.", 200)} {
		f.Add(tok, video, "viewer", int64(3600))
	}
	f.Add(good, "another", "a.b", int64(-5))
	f.Fuzz(func(t *testing.T, token, videoID, viewer string, ttl int64) {
		got, _, err := s.verify(token, videoID, now)
		if err != nil {
			if !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrURLExpired) || errs.KindOf(err) != errs.Forbidden {
				t.Fatalf("verify(%q): %v", token, err)
			}
		} else {
			exp, _, _ := strings.Cut(token, ".")
			e, _ := strconv.ParseInt(exp, 10, 64)
			if want := s.token(videoID, got, time.Unix(e, 0)); token != want {
				t.Fatalf("verify accepted %q, which the signer writes %q", token, want)
			}
		}

		exp := now.Add(time.Duration(bounded(ttl, 1<<20)-(1<<19)) * time.Second)
		mine := s.token(videoID, viewer, exp)
		got, _, err = s.verify(mine, videoID, now)
		switch {
		case viewer == "" || len(mine) > maxTokenLen || exp.Unix() <= 0:
			if err == nil {
				t.Fatalf("verify(%q) accepted a token the server does not make", mine)
			}
		case !exp.After(now):
			if !errors.Is(err, ErrURLExpired) {
				t.Fatalf("verify(%q) past its expiry: %v", mine, err)
			}
		case err != nil || got != viewer:
			t.Fatalf("verify(%q) = %q, %v; want %q", mine, got, err, viewer)
		}
		if _, _, err := s.verify(mine, videoID+"x", now); err == nil {
			t.Fatalf("a token for %q opened %q", videoID, videoID+"x")
		}
	})
}

// fuzzVideoHead is the head of an MP4 file, enough to sniff as one.
const fuzzVideoHead = "\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2\x00\x00\x00\x08free"

// FuzzUploadForm: whatever the Content-Type, declared length and body, a
// multipart upload either arrives (a spooled video part whose bytes are
// what the standard parser reads, a title within its bound) or is refused
// with a client error; either way no spool file is left but the one it
// hands over.
func FuzzUploadForm(f *testing.F) {
	form := func(parts ...[2]string) []byte {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		_ = mw.SetBoundary("B0undary")
		for _, p := range parts {
			var w io.Writer
			if p[0] == "video" {
				w, _ = mw.CreateFormFile("video", "clip.mp4")
			} else {
				w, _ = mw.CreateFormField(p[0])
			}
			_, _ = io.WriteString(w, p[1])
		}
		_ = mw.Close()
		return b.Bytes()
	}
	ct := "multipart/form-data; boundary=B0undary"
	video := fuzzVideoHead + strings.Repeat("\x00", 64)
	for _, b := range [][]byte{
		form([2]string{"title", "cats"}, [2]string{"video", video}),
		form([2]string{"video", video}, [2]string{"title", "cats"}, [2]string{"description", "d"}),
		form([2]string{"video", video}),
		form([2]string{"title", "t"}, [2]string{"video", "not a video"}),
		form([2]string{"title", "t"}, [2]string{"video", video}, [2]string{"video", video}),
		form([2]string{"title", strings.Repeat("x", maxTitleBytes+1)}, [2]string{"video", video}),
		form([2]string{"extra", "e"}, [2]string{"title", "\u200b"}, [2]string{"video", video}),
		[]byte("--B0undary\r\n\r\n"), nil,
	} {
		f.Add(b, ct, int64(len(b)))
		f.Add(b, ct, int64(len(b)/2))
		f.Add(slices.Clip(b), ct, int64(len(b)+8)) // says more than it sends
	}
	f.Add([]byte("x"), "text/plain", int64(1))
	f.Add([]byte("x"), "multipart/form-data", int64(1))
	f.Add([]byte("x"), "multipart/form-data; boundary=\"", int64(1))
	// One spool directory for every run (each run leaves it empty):
	// a directory a run makes costs more than the run.
	dir := f.TempDir()
	s := &Service{cfg: Config{SpoolDir: dir}}
	f.Fuzz(func(t *testing.T, body []byte, contentType string, declared int64) {
		// A failed run may leave its files (it stops before removing
		// them); the fuzzer then minimises in the same process, and each
		// candidate must be judged on its own files alone.
		left, _ := os.ReadDir(dir)
		for _, e := range left {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
		declared = bounded(declared, int64(len(body))+16)
		boundary, err := formBoundary(contentType)
		if err != nil {
			if k := errs.KindOf(err); k != errs.Unsupported && k != errs.Invalid {
				t.Fatalf("content type %q: %v", contentType, err)
			}
			return
		}
		in, err := s.receive(bytes.NewReader(body), boundary, declared)
		if err != nil {
			switch k := errs.KindOf(err); k {
			case errs.Invalid, errs.Unsupported, errs.TooLarge, errs.Validation:
			default:
				t.Fatalf("receive: kind %v: %v", k, err)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Fatalf("refused (%v), yet %d spool files left", err, len(left))
			}
			return
		}
		spooled, err := os.ReadFile(in.Path)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(spooled)) != in.Size || in.Size > declared {
			t.Fatalf("spooled %d bytes, said %d, declared %d", len(spooled), in.Size, declared)
		}
		if m, err := in.Meta.Validate(); err != nil || m.Title == "" || len(in.Meta.Title) > maxTitleBytes {
			t.Fatalf("accepted meta %+v: %v", in.Meta, err)
		}
		// Slicing past len(body) would reach into its spare capacity.
		if want := videoPart(t, body[:min(declared, int64(len(body)))], boundary); !bytes.Equal(spooled, want) {
			t.Fatalf("spooled %q, the video part is %q", spooled, want)
		}
		if err := os.Remove(in.Path); err != nil {
			t.Fatal(err)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Fatalf("%d spool files left besides the upload", len(left))
		}
	})
}

// videoPart is the video part of a form, as mime/multipart reads it.
func videoPart(t *testing.T, body []byte, boundary string) []byte {
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("the standard parser fails on a form reel accepted: %v", err)
		}
		if p.FormName() == "video" {
			b, err := io.ReadAll(p)
			if err != nil {
				t.Fatalf("the standard parser fails on the video part: %v", err)
			}
			return b
		}
	}
}
