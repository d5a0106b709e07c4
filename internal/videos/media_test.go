package videos_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

const testChunk = 4096

// play asks for a playback grant and returns the video and poster URLs.
func (e *env) play(u user, id string) (string, string) {
	e.t.Helper()
	r := e.do("POST", "/api/v1/videos/"+id+"/playback", u.token, nil)
	if r.status != 200 {
		e.t.Fatalf("playback: %d %s", r.status, r.raw)
	}
	poster, _ := r.body["poster_url"].(string)
	return r.body["url"].(string), poster
}

func TestMediaRanges(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		clip := testVideo(t, 2, 320, 240)
		size := len(clip)
		ann, bob := e.user("user"), e.user("user")
		id := e.mustUpload(ann, "ranges", clip)

		pb := e.do("POST", "/api/v1/videos/"+id+"/playback", bob.token, nil)
		if pb.status != 200 {
			t.Fatalf("playback: %d %s", pb.status, pb.raw)
		}
		url, poster := pb.body["url"].(string), pb.body["poster_url"].(string)
		if !strings.HasPrefix(url, e.srv.URL+"/media/") || !strings.HasSuffix(url, "/"+id+"/video.mp4") || !strings.HasSuffix(poster, "/"+id+"/poster.jpg") {
			t.Fatalf("urls %s %s", url, poster)
		}
		if exp, err := time.Parse(time.RFC3339, pb.body["expires_at"].(string)); err != nil || exp.Before(time.Now().Add(50*time.Minute)) {
			t.Fatalf("expires_at %v", pb.body["expires_at"])
		}
		if a := e.actions(); a["STREAM_VIDEO:success"] != 1 {
			t.Fatalf("STREAM_VIDEO once per grant: %v", a)
		}

		var sent int64 // body bytes bob received, to compare with his metered egress
		get := func(method string, hdr ...string) resp {
			t.Helper()
			r := e.do(method, url, "", nil, hdr...)
			if r.status == 200 || r.status == 206 {
				sent += int64(len(r.raw))
			}
			return r
		}

		full := get("GET")
		if full.status != 200 || !bytes.Equal(full.raw, clip) || full.header.Get("Accept-Ranges") != "bytes" ||
			full.header.Get("Content-Type") != "video/mp4" || full.header.Get("ETag") == "" || full.header.Get("Last-Modified") == "" {
			t.Fatalf("full: %d %v", full.status, full.header)
		}
		etag, lastMod := full.header.Get("ETag"), full.header.Get("Last-Modified")

		cases := []struct {
			rng, wantRange string
			from, to       int // the bytes expected, [from, to)
		}{
			{"bytes=0-0", fmt.Sprintf("bytes 0-0/%d", size), 0, 1},                                                            // first byte
			{fmt.Sprintf("bytes=%d-%d", size-1, size-1), fmt.Sprintf("bytes %d-%d/%d", size-1, size-1, size), size - 1, size}, // last byte
			{"bytes=-10", fmt.Sprintf("bytes %d-%d/%d", size-10, size-1, size), size - 10, size},                              // suffix
			{"bytes=100-", fmt.Sprintf("bytes 100-%d/%d", 100+testChunk-1, size), 100, 100 + testChunk},                       // open-ended, bounded
			{fmt.Sprintf("bytes=%d-", size-1000), fmt.Sprintf("bytes %d-%d/%d", size-1000, size-1, size), size - 1000, size},
			{"bytes=10-19", fmt.Sprintf("bytes 10-19/%d", size), 10, 20},
		}
		for _, c := range cases {
			r := get("GET", "Range", c.rng)
			if r.status != 206 || r.header.Get("Content-Range") != c.wantRange || !bytes.Equal(r.raw, clip[c.from:c.to]) {
				t.Fatalf("%s: %d %q (%d bytes)", c.rng, r.status, r.header.Get("Content-Range"), len(r.raw))
			}
		}
		// Unsatisfiable: 416 as a problem document.
		r := get("GET", "Range", fmt.Sprintf("bytes=%d-", size))
		if r.status != 416 || r.code() != "range_not_satisfiable" || r.header.Get("Content-Range") != fmt.Sprintf("bytes */%d", size) {
			t.Fatalf("416: %d %v %s", r.status, r.header, r.raw)
		}
		// A zero-length suffix selects nothing; so does a malformed range.
		for _, rng := range []string{"bytes=-0", "bytes=abc"} {
			if r := get("GET", "Range", rng); r.status != 416 || r.code() != "range_not_satisfiable" || r.header.Get("Content-Range") != fmt.Sprintf("bytes */%d", size) {
				t.Fatalf("%s: %d %v %s", rng, r.status, r.header, r.raw)
			}
		}
		// A range unit other than bytes is ignored: the whole file.
		if r := get("GET", "Range", "items=0-1"); r.status != 200 || len(r.raw) != size {
			t.Fatalf("items=0-1: %d (%d bytes)", r.status, len(r.raw))
		}
		// Up to 16 ranges are served as multipart/byteranges; more are
		// ignored, as nginx does past max_ranges: the whole file.
		many := func(n int) string {
			specs := make([]string, n)
			for i := range specs {
				specs[i] = fmt.Sprintf("%d-%d", 2*i, 2*i)
			}
			return "bytes=" + strings.Join(specs, ",")
		}
		if r := get("GET", "Range", many(16)); r.status != 206 || !strings.HasPrefix(r.header.Get("Content-Type"), "multipart/byteranges") {
			t.Fatalf("16 ranges: %d %v", r.status, r.header)
		}
		for _, n := range []int{17, 5000} {
			if r := get("GET", "Range", many(n)); r.status != 200 || !bytes.Equal(r.raw, clip) {
				t.Fatalf("%d ranges: %d (%d bytes)", n, r.status, len(r.raw))
			}
		}
		// If-Range: the range only while the ETag matches.
		if r := get("GET", "Range", "bytes=0-9", "If-Range", etag); r.status != 206 || len(r.raw) != 10 {
			t.Fatalf("If-Range match: %d", r.status)
		}
		if r := get("GET", "Range", "bytes=0-9", "If-Range", `"stale"`); r.status != 200 || len(r.raw) != size {
			t.Fatalf("If-Range mismatch: %d", r.status)
		}
		if r := get("GET", "Range", "bytes=-0", "If-Range", `"stale"`); r.status != 200 || len(r.raw) != size {
			t.Fatalf("If-Range mismatch, empty range: %d", r.status)
		}
		// Conditional requests.
		if r := get("GET", "If-None-Match", etag); r.status != 304 {
			t.Fatalf("If-None-Match: %d", r.status)
		}
		if r := get("GET", "If-Modified-Since", lastMod); r.status != 304 {
			t.Fatalf("If-Modified-Since: %d", r.status)
		}
		if r := get("GET", "If-Match", `"other"`); r.status != 412 || r.code() != "precondition_failed" {
			t.Fatalf("If-Match: %d %s", r.status, r.raw)
		}
		if r := get("HEAD"); r.status != 200 || r.header.Get("Content-Length") != fmt.Sprint(size) || len(r.raw) != 0 {
			t.Fatalf("HEAD: %d %v", r.status, r.header)
		}
		// The poster, under its name and as the .jpg sibling of the video.
		for _, u := range []string{poster, strings.TrimSuffix(url, ".mp4") + ".jpg"} {
			p := e.do("GET", u, "", nil)
			if p.status != 200 || p.header.Get("Content-Type") != "image/jpeg" || !bytes.HasPrefix(p.raw, []byte{0xff, 0xd8, 0xff}) {
				t.Fatalf("poster %s: %d %v", u, p.status, p.header)
			}
			sent += int64(len(p.raw))
		}
		// The server counts once an answer is written, which may be just
		// after the client has read it.
		eventually(t, 5*time.Second, func() string {
			if got := e.egress.total(bob.id); got != sent {
				return fmt.Sprintf("egress metered %d, bytes sent %d", got, sent)
			}
			return ""
		})
		if got := e.egress.total(ann.id); got != 0 {
			t.Fatalf("the owner was metered %d for bob's viewing", got)
		}

		// In the trash, the video no longer plays.
		if d := e.do("DELETE", "/api/v1/videos/"+id, ann.token, nil); d.status != 204 {
			t.Fatalf("delete: %d", d.status)
		}
		for _, u := range []string{url, strings.Replace(url, "video.mp4", "poster.jpg", 1)} {
			if r := e.do("GET", u, "", nil, "Range", "bytes=0-9"); r.status != 404 || r.code() != "video_not_found" {
				t.Fatalf("trashed video plays: %d %s", r.status, r.raw)
			}
		}
	}, func(c *envConfig) { c.chunk = testChunk })
}

func TestMediaSignatures(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		clip := testVideo(t, 1, 64, 48)
		ann := e.user("user")
		id := e.mustUpload(ann, "one", clip)
		other := e.mustUpload(ann, "two", clip)
		url, _ := e.play(ann, id)
		if r := e.do("GET", url, "", nil); r.status != 200 {
			t.Fatalf("genuine: %d %s", r.status, r.raw)
		}
		i := strings.Index(url, "/media/") + len("/media/")
		j := i + strings.Index(url[i:], "/")
		token := url[i:j]
		parts := strings.Split(token, ".")
		flip := func(s string) string {
			b := []byte(s)
			if b[0] == 'A' {
				b[0] = 'B'
			} else {
				b[0] = 'A'
			}
			return string(b)
		}
		forged := map[string]string{
			"signature": parts[0] + "." + parts[1] + "." + flip(parts[2]),
			"expiry":    fmt.Sprint(atoi(parts[0])+3600) + "." + parts[1] + "." + parts[2],
			"viewer":    parts[0] + "." + e.user("user").id + "." + parts[2],
			"garbage":   "nonsense",
			"empty sig": parts[0] + "." + parts[1] + ".",
		}
		for what, tok := range forged {
			r := e.do("GET", url[:i]+tok+url[j:], "", nil)
			if r.status != 403 || r.code() != "invalid_signature" {
				t.Fatalf("forged %s: %d %s", what, r.status, r.raw)
			}
		}
		// The token binds the video: it does not open another one.
		if r := e.do("GET", strings.Replace(url, id, other, 1), "", nil); r.status != 403 {
			t.Fatalf("token on another video: %d", r.status)
		}
		// Unknown file names under a good token are 404, saying so.
		if r := e.do("GET", strings.Replace(url, "video.mp4", "secret.txt", 1), "", nil); r.status != 404 || r.code() != "file_not_found" {
			t.Fatalf("unknown file: %d %s", r.status, r.raw)
		}
		e.advance(61 * time.Minute)
		if r := e.do("GET", url, "", nil); r.status != 403 || r.code() != "url_expired" {
			t.Fatalf("expired: %d %s", r.status, r.raw)
		}
	})
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

// A viewer can overshoot the daily egress limit by at most one chunk,
// then gets 429; metering equals the bytes actually delivered, also when
// an answer is cut off at the allowance.
func TestMediaEgressLimit(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		clip := testVideo(t, 2, 320, 240)
		ann, bob := e.user("user"), e.user("user")
		id := e.mustUpload(ann, "limited", clip)
		url, _ := e.play(bob, id)
		e.egress.limit = 5000

		r1 := e.do("GET", url, "", nil, "Range", "bytes=0-")
		r2 := e.do("GET", url, "", nil, "Range", fmt.Sprintf("bytes=%d-", testChunk))
		if r1.status != 206 || len(r1.raw) != testChunk || r2.status != 206 || len(r2.raw) != testChunk {
			t.Fatalf("within the allowance: %d (%d bytes), %d (%d bytes)", r1.status, len(r1.raw), r2.status, len(r2.raw))
		}
		// Answers are counted as soon as they are written (just after
		// the client has them); the next request sees them.
		eventually(t, 5*time.Second, func() string {
			if got := e.egress.total(bob.id); got != 2*testChunk {
				return fmt.Sprintf("metered %d", got)
			}
			return ""
		})
		r3 := e.do("GET", url, "", nil, "Range", fmt.Sprintf("bytes=%d-", 2*testChunk))
		if r3.status != 429 || r3.code() != "daily_limit_reached" || r3.header.Get("Retry-After") == "" {
			t.Fatalf("past the allowance: %d %v %s", r3.status, r3.header, r3.raw)
		}
		if got := e.egress.total(bob.id); got != 2*testChunk || got-5000 > testChunk {
			t.Fatalf("metered %d", got)
		}

		// A whole-file GET with 1000 bytes left stops at 1000 + one chunk.
		carol := e.user("user")
		url, _ = e.play(carol, id)
		e.egress.mu.Lock()
		e.egress.used[carol.id] = 4000
		e.egress.mu.Unlock()
		res, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		got, rerr := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || rerr == nil || len(got) != 1000+testChunk || !bytes.Equal(got, clip[:len(got)]) {
			t.Fatalf("cut answer: %d, %d bytes, err %v", res.StatusCode, len(got), rerr)
		}
		eventually(t, 5*time.Second, func() string {
			if m := e.egress.total(carol.id); m != 4000+int64(len(got)) {
				return fmt.Sprintf("carol metered %d, received %d", m-4000, len(got))
			}
			return ""
		})
	}, func(c *envConfig) { c.chunk = testChunk })
}

// The media route needs no Authorization header: a plain <video src>.
func TestMediaNeedsNoHeader(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		ann := e.user("user")
		id := e.mustUpload(ann, "plain", testVideo(t, 1, 64, 48))
		url, _ := e.play(ann, id)
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("plain GET: %d", res.StatusCode)
		}
	})
}
