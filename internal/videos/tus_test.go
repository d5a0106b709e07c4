package videos_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func tusMeta(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, kv[i]+" "+base64.StdEncoding.EncodeToString([]byte(kv[i+1])))
	}
	return strings.Join(parts, ",")
}

func (e *env) tusCreate(u user, size int, meta string) resp {
	e.t.Helper()
	return e.do("POST", "/api/v1/uploads", u.token, nil, "Tus-Resumable", "1.0.0",
		"Upload-Length", strconv.Itoa(size), "Upload-Metadata", meta)
}

func (e *env) tusPatch(u user, loc string, offset int, chunk []byte) resp {
	e.t.Helper()
	return e.do("PATCH", loc, u.token, chunk, "Tus-Resumable", "1.0.0", "Upload-Offset", strconv.Itoa(offset),
		"Content-Type", "application/offset+octet-stream")
}

func (e *env) tusOffset(u user, loc string) (int, resp) {
	e.t.Helper()
	r := e.do("HEAD", loc, u.token, nil, "Tus-Resumable", "1.0.0")
	n, _ := strconv.Atoi(r.header.Get("Upload-Offset"))
	return n, r
}

func TestTusUploadInterruptedAndResumed(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		clip := testVideo(t, 2, 320, 240)
		ann, bob := e.user("user"), e.user("user")

		opt := e.do("OPTIONS", "/api/v1/uploads", "", nil)
		if opt.status != 200 || opt.header.Get("Tus-Version") != "1.0.0" || !strings.Contains(opt.header.Get("Tus-Extension"), "creation") ||
			!strings.Contains(opt.header.Get("Tus-Extension"), "termination") || opt.header.Get("Tus-Max-Size") != strconv.Itoa(64<<20) {
			t.Fatalf("discovery: %d %v", opt.status, opt.header)
		}
		if r := e.tusCreate(user{}, len(clip), tusMeta("title", "x")); r.status != 401 {
			t.Fatalf("anonymous create: %d", r.status)
		}
		if r := e.do("POST", "/api/v1/uploads", ann.token, nil, "Tus-Resumable", "1.0.0", "Upload-Defer-Length", "1",
			"Upload-Metadata", tusMeta("title", "x")); r.status != 400 || r.code() != "length_required" {
			t.Fatalf("deferred length: %d %s", r.status, r.raw)
		}

		c := e.tusCreate(ann, len(clip), tusMeta("title", "Resumed", "filename", "trip.mp4"))
		if c.status != 201 {
			t.Fatalf("create: %d %s", c.status, c.raw)
		}
		loc := c.header.Get("Location")
		if !strings.HasPrefix(loc, e.srv.URL+"/api/v1/uploads/") {
			t.Fatalf("location %q", loc)
		}
		if _, held, _ := e.quota.state(""); held != 1 {
			t.Fatalf("creation did not reserve: %d held", held)
		}
		// Private to its creator.
		if _, r := e.tusOffset(bob, loc); r.status != 404 {
			t.Fatalf("someone else's HEAD: %d", r.status)
		}
		if r := e.tusPatch(bob, loc, 0, clip[:10]); r.status != 404 || r.header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("someone else's PATCH: %d %s", r.status, r.raw)
		}
		if _, r := e.tusOffset(user{}, loc); r.status != 401 {
			t.Fatalf("anonymous HEAD: %d", r.status)
		}

		first := len(clip) * 2 / 5
		if r := e.tusPatch(ann, loc, 0, clip[:first]); r.status != 204 || r.header.Get("Upload-Offset") != strconv.Itoa(first) {
			t.Fatalf("first chunk: %d %v %s", r.status, r.header, r.raw)
		}
		// A wrong offset is a conflict, as a problem document.
		if r := e.tusPatch(ann, loc, 1, clip[1:2]); r.status != 409 || r.code() != "mismatched_offset" {
			t.Fatalf("wrong offset: %d %s", r.status, r.raw)
		}

		// The connection breaks in the middle of the second chunk.
		path := strings.TrimPrefix(loc, e.srv.URL)
		conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: %d\r\n"+
			"Content-Type: application/offset+octet-stream\r\nContent-Length: %d\r\n\r\n", path, ann.token, first, len(clip)-first)
		sent := len(clip) / 5
		_, _ = conn.Write(clip[first : first+sent])
		time.Sleep(200 * time.Millisecond)
		_ = conn.Close()

		var offset int
		eventually(t, 15*time.Second, func() string {
			var r resp
			offset, r = e.tusOffset(ann, loc)
			if r.status != 200 || offset < first || offset > first+sent {
				return fmt.Sprintf("offset after the break: %d (%d)", offset, r.status)
			}
			if offset != first+sent {
				return "the server is still writing"
			}
			return ""
		})

		// Resume from where the server stands.
		done := e.tusPatch(ann, loc, offset, clip[offset:])
		if done.status != 204 || done.header.Get("Upload-Offset") != strconv.Itoa(len(clip)) {
			t.Fatalf("last chunk: %d %v %s", done.status, done.header, done.raw)
		}
		id := done.header.Get("Reel-Video-Id")
		g := e.do("GET", "/api/v1/videos/"+id, ann.token, nil)
		if g.status != 200 {
			t.Fatalf("video: %d %s", g.status, g.raw)
		}
		v := g.video(t)
		if v["title"] != "Resumed" || v["status"] != "ready" || v["size_bytes"] != float64(len(clip)) || v["width"] != float64(320) {
			t.Fatalf("video %v", v)
		}
		// The finished upload still answers HEAD, naming its video.
		if off, r := e.tusOffset(ann, loc); r.status != 200 || off != len(clip) || r.header.Get("Reel-Video-Id") != id {
			t.Fatalf("HEAD after completion: %d %d %v", r.status, off, r.header)
		}
		if r := e.tusPatch(ann, loc, len(clip), nil); r.status != 404 {
			t.Fatalf("PATCH after completion: %d", r.status)
		}
		if up, _ := e.limit.state(ann.id); up != int64(len(clip)) {
			t.Fatalf("daily upload %d", up)
		}
		e.cutPosters()
		e.noLeaks(t, 1)
		if a := e.actions(); a["UPLOAD_VIDEO:success"] != 1 {
			t.Fatalf("events %v", a)
		}
	})
}

func TestTusRefusals(t *testing.T) {
	clip := testVideo(t, 1, 64, 48)
	withEnv(t, func(t *testing.T, e *env) {
		ann := e.user("user")
		r := e.tusCreate(ann, len(clip), tusMeta("title", "big"))
		if r.status != 413 || r.code() != "quota_exceeded" || r.header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("over quota: %d %v %s", r.status, r.header, r.raw)
		}
		e.noLeaks(t, 0)
	}, func(c *envConfig) { c.quota = int64(len(clip)) - 1 })
	withEnv(t, func(t *testing.T, e *env) {
		ann := e.user("user")
		r := e.tusCreate(ann, len(clip), tusMeta("title", "big"))
		if r.status != 429 || r.code() != "daily_limit_reached" || r.header.Get("Retry-After") == "" {
			t.Fatalf("over the daily limit: %d %v %s", r.status, r.header, r.raw)
		}
		if r := e.tusCreate(ann, 100<<20, tusMeta("title", "huge")); r.status != 413 {
			t.Fatalf("over the max size: %d %s", r.status, r.raw)
		}
		if r := e.tusCreate(ann, 10, tusMeta("filename", "no title")); r.status != 422 || r.code() != "validation_failed" {
			t.Fatalf("no title: %d %s", r.status, r.raw)
		}
		// Not a video: the last PATCH is refused with 415 and everything
		// is given back.
		text := []byte(strings.Repeat("hello, world\n", 100))
		c := e.tusCreate(ann, len(text), tusMeta("title", "text"))
		if c.status != 201 {
			t.Fatalf("create: %d %s", c.status, c.raw)
		}
		loc := c.header.Get("Location")
		if r := e.tusPatch(ann, loc, 0, text); r.status != 415 || r.code() != "unsupported_media" {
			t.Fatalf("text upload: %d %s", r.status, r.raw)
		}
		if _, r := e.tusOffset(ann, loc); r.status != 404 {
			t.Fatalf("HEAD of a refused upload: %d", r.status)
		}
		e.noLeaks(t, 0)
	}, func(c *envConfig) { c.daily = int64(len(clip)) - 1 })
}

func TestTusTerminateAndExpire(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		clip := testVideo(t, 1, 64, 48)
		ann, bob := e.user("user"), e.user("user")
		c := e.tusCreate(ann, len(clip), tusMeta("title", "gone"))
		loc := c.header.Get("Location")
		if r := e.tusPatch(ann, loc, 0, clip[:100]); r.status != 204 {
			t.Fatalf("patch: %d", r.status)
		}
		if r := e.do("DELETE", loc, bob.token, nil, "Tus-Resumable", "1.0.0"); r.status != 404 {
			t.Fatalf("someone else terminates: %d", r.status)
		}
		if r := e.do("DELETE", loc, ann.token, nil, "Tus-Resumable", "1.0.0"); r.status != 204 {
			t.Fatalf("terminate: %d %s", r.status, r.raw)
		}
		if _, r := e.tusOffset(ann, loc); r.status != 404 {
			t.Fatalf("HEAD after termination: %d", r.status)
		}
		e.noLeaks(t, 0)

		// Abandoned: expired by the periodic job once idle past its expiry.
		c = e.tusCreate(ann, len(clip), tusMeta("title", "abandoned"))
		loc = c.header.Get("Location")
		if r := e.tusPatch(ann, loc, 0, clip[:100]); r.status != 204 {
			t.Fatalf("patch: %d", r.status)
		}
		if err := e.tus.Expire(context.Background()); err != nil {
			t.Fatal(err)
		}
		if off, r := e.tusOffset(ann, loc); r.status != 200 || off != 100 {
			t.Fatalf("a fresh upload was expired: %d %d", r.status, off)
		}
		e.advance(2 * time.Hour)
		if err := e.tus.Expire(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, r := e.tusOffset(ann, loc); r.status != 404 {
			t.Fatalf("HEAD after expiry: %d", r.status)
		}
		e.noLeaks(t, 0)

		// An upload whose files are on another replica is left to that
		// replica's job, and expired here only once that replica has been
		// gone for another expiry period.
		c = e.tusCreate(ann, len(clip), tusMeta("title", "elsewhere"))
		id := c.header.Get("Location")[strings.LastIndex(c.header.Get("Location"), "/")+1:]
		for _, f := range []string{id, id + ".info"} {
			if err := os.Remove(filepath.Join(e.dirs.tus, f)); err != nil {
				t.Fatal(err)
			}
		}
		e.advance(90 * time.Minute)
		if err := e.tus.Expire(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, held, _ := e.quota.state(""); held != 1 {
			t.Fatalf("another replica's upload was expired early (%d held)", held)
		}
		e.advance(time.Hour)
		if err := e.tus.Expire(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.noLeaks(t, 0)

		// Files whose upload is closed or unknown (a crash) are swept once
		// old enough.
		stray := uuid.NewString()
		for _, f := range []string{stray, stray + ".info"} {
			p := filepath.Join(e.dirs.tus, f)
			if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
				t.Fatal(err)
			}
			old := e.clock().Add(-2 * time.Hour)
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.tus.Expire(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.noLeaks(t, 0)
	})
}
