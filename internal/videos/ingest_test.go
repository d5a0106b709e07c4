package videos_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/compat"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
)

// rawUpload is an upload request written byte for byte, so that both
// routes get exactly the same one.
type rawUpload struct {
	contentType string
	body        []byte
	// length is the declared Content-Length: len(body) when 0, none (a
	// chunked body) when negative.
	length int64
	// cut sends half the body and then shuts the connection's write side,
	// as a client that broke off; the answer can still be read.
	cut bool
}

// send writes u to the route at path of the server at addr and returns
// the answer's status, content type and JSON body.
func (u rawUpload) send(t *testing.T, addr, path, token string) (int, string, map[string]any) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	var head strings.Builder
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n", path, token)
	if u.contentType != "" {
		fmt.Fprintf(&head, "Content-Type: %s\r\n", u.contentType)
	}
	body := u.body
	switch {
	case u.length < 0:
		head.WriteString("Transfer-Encoding: chunked\r\n")
		var chunked bytes.Buffer
		cw := httputil.NewChunkedWriter(&chunked)
		_, _ = cw.Write(body)
		_ = cw.Close()
		chunked.WriteString("\r\n")
		body = chunked.Bytes()
	case u.length > 0:
		fmt.Fprintf(&head, "Content-Length: %d\r\n", u.length)
	default:
		fmt.Fprintf(&head, "Content-Length: %d\r\n", len(body))
	}
	head.WriteString("\r\n")
	if u.cut {
		body = body[:len(body)/2]
	}
	if _, err := io.WriteString(conn, head.String()); err != nil {
		t.Fatal(err)
	}
	// A refusal may close the connection before the body is all written.
	_, _ = conn.Write(body)
	if u.cut {
		_ = conn.(*net.TCPConn).CloseWrite()
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s: read the answer: %v", path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: answer %d is not JSON: %s", path, res.StatusCode, raw)
	}
	return res.StatusCode, res.Header.Get("Content-Type"), m
}

// The v1 multipart route and the compatibility route receive uploads
// through the same Service.UploadForm: the same bad bodies are refused as
// the same kind of error on both, each in its own answer shape (v1's
// problem documents, the original's {message, error} with its words), and
// leave nothing behind: no reservation, spool file, blob or row.
func TestUploadRoutesClassifyAlike(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		mux := http.NewServeMux()
		compat.NewVideos(e.svc, e.iss.Verifier(), compat.VideosConfig{Limits: compat.StaticLimits{Quota: -1, DailyUpload: -1}}).Routes(mux)
		compatSrv := httptest.NewServer(httpx.Wrap(mux, httpx.MiddlewareConfig{Logger: obs.Discard()}))
		t.Cleanup(compatSrv.Close)
		ann := e.user("user")
		clip := testVideo(t, 1, 64, 48)

		form := func(parts ...string) rawUpload {
			var b strings.Builder
			for i := 0; i+1 < len(parts); i += 2 {
				disp := `form-data; name="` + parts[i] + `"`
				if parts[i] == "video" {
					disp += `; filename="clip.mp4"`
				}
				fmt.Fprintf(&b, "--B\r\nContent-Disposition: %s\r\n\r\n%s\r\n", disp, parts[i+1])
			}
			b.WriteString("--B--\r\n")
			return rawUpload{contentType: "multipart/form-data; boundary=B", body: []byte(b.String())}
		}
		good := form("video", string(clip), "title", "fine")
		unclosed := good
		unclosed.body = bytes.TrimSuffix(good.body, []byte("--B--\r\n"))
		cut := good
		cut.cut = true
		chunked := good
		chunked.length = -1
		oversized := rawUpload{contentType: good.contentType, length: 1 << 40}
		raw := good
		raw.contentType = "video/mp4"
		manyParts := []string{"video", string(clip), "title", "t"}
		for i := 0; i < 40; i++ {
			manyParts = append(manyParts, fmt.Sprint("extra", i), "x")
		}

		// How each route answers a kind of refusal.
		type answers struct {
			v1Status      int
			v1Code        string
			compatStatus  int
			compatMessage string
		}
		kinds := map[string]answers{
			"malformed":     {400, "malformed_upload", 400, "Error uploading video"},
			"cut off":       {400, "upload_incomplete", 400, "Error uploading video"},
			"oversized":     {413, "upload_too_large", 413, "Video file too large"},
			"not a video":   {415, "unsupported_media", 415, "Unsupported video file"},
			"missing title": {422, "validation_failed", 400, "Video title is required"},
			"missing file":  {422, "validation_failed", 400, "No video file provided"},
			"invalid field": {422, "validation_failed", 400, "Invalid input"},
			"not a form":    {415, "unsupported_content_type", 400, "No video file provided"},
			"no length":     {411, "length_required", 411, "Content-Length required: the upload is admitted by its declared size"},
		}
		for _, tc := range []struct {
			name, kind string
			upload     rawUpload
		}{
			{"not multipart at all", "malformed", rawUpload{contentType: "multipart/form-data; boundary=B", body: []byte("just some text")}},
			{"a part header without a colon", "malformed", rawUpload{contentType: "multipart/form-data; boundary=B", body: []byte("--B\r\nno colon\r\n\r\nx\r\n--B--\r\n")}},
			{"no closing boundary", "malformed", unclosed},
			{"no boundary parameter", "malformed", rawUpload{contentType: "multipart/form-data", body: good.body}},
			{"two video parts", "malformed", form("video", string(clip), "video", string(clip), "title", "t")},
			{"too many parts", "malformed", form(manyParts...)},
			{"a field over its bound", "malformed", form("video", string(clip), "title", "t", "notes", strings.Repeat("n", 70<<10))},
			{"cut off mid-body", "cut off", cut},
			{"declared past the largest upload", "oversized", oversized},
			{"a text file", "not a video", form("video", strings.Repeat("just some text\n", 200), "title", "notes")},
			{"no title", "missing title", form("video", string(clip))},
			{"a blank title", "missing title", form("video", string(clip), "title", "   ")},
			{"no file", "missing file", form("title", "t")},
			{"neither file nor title", "missing file", form("description", "d")},
			{"a title too long", "invalid field", form("video", string(clip), "title", strings.Repeat("é", 201))},
			{"a title over its byte bound", "invalid field", form("video", string(clip), "title", strings.Repeat("t", 1000))},
			{"a raw body", "not a form", raw},
			{"a chunked body", "no length", chunked},
		} {
			want := kinds[tc.kind]
			status, ct, p := tc.upload.send(t, e.srv.Listener.Addr().String(), "/api/v1/videos", ann.token)
			if status != want.v1Status || p["code"] != want.v1Code || ct != "application/problem+json" {
				t.Errorf("%s on v1: %d %s %v, want %d %s", tc.name, status, ct, p, want.v1Status, want.v1Code)
			}
			detail, _ := p["detail"].(string)
			status, ct, m := tc.upload.send(t, compatSrv.Listener.Addr().String(), "/api/videos/upload", ann.token)
			if status != want.compatStatus || m["message"] != want.compatMessage || !strings.HasPrefix(ct, "application/json") {
				t.Errorf("%s on compat: %d %s %v, want %d %q", tc.name, status, ct, m, want.compatStatus, want.compatMessage)
			}
			// Where the original's answer carries the reason, it is v1's.
			if why, ok := m["error"].(string); ok && want.compatMessage != "Invalid input" && why != detail {
				t.Errorf("%s: compat's reason %q, v1's %q", tc.name, why, detail)
			}
			e.noLeaks(t, 0)
		}
		if n := e.videoRows(); n != 0 {
			t.Fatalf("%d video rows after refused uploads", n)
		}
		if a := e.actions(); a["UPLOAD_VIDEO:success"] != 0 {
			t.Fatalf("events %v", a)
		}

		// The same good body is taken by both, so the refusals above are
		// the bodies' doing.
		if status, _, p := good.send(t, e.srv.Listener.Addr().String(), "/api/v1/videos", ann.token); status != 201 {
			t.Fatalf("good upload on v1: %d %v", status, p)
		}
		if status, _, m := good.send(t, compatSrv.Listener.Addr().String(), "/api/videos/upload", ann.token); status != 200 {
			t.Fatalf("good upload on compat: %d %v", status, m)
		}
		e.cutPosters()
		e.noLeaks(t, 2)
		if n := e.videoRows(); n != 2 {
			t.Fatalf("%d video rows after two uploads", n)
		}
		if a := e.actions(); a["UPLOAD_VIDEO:success"] != 2 {
			t.Fatalf("events %v", a)
		}
	}, func(c *envConfig) { c.maxUpload = 16 << 20 })
}

// videoRows counts the rows of the videos table, in every state.
func (e *env) videoRows() int {
	e.t.Helper()
	var n int
	if err := e.db.R.QueryRow(`SELECT COUNT(*) FROM videos`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}
