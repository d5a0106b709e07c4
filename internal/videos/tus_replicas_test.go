package videos_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
	"github.com/reel-video/reel/internal/videos"
)

// Two replicas on one database and one shared tus directory (REEL_TUS_DIR):
// a PATCH stalled on one is interrupted when the other is asked for the
// upload, so the two never write it at once, and the upload completes on
// the other, byte for byte.
func TestTusReplicasOneWriterAtATime(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		dir := filepath.Join(t.TempDir(), "tus")
		one := newEnv(t, db, func(c *envConfig) { c.tus = dir })
		two := newEnv(t, db, func(c *envConfig) {
			c.tus, c.iss = dir, one.iss
			c.deps = func(*sqldb.DB) (videos.Quota, videos.UploadLimit, videos.Egress) {
				return one.quota, one.limit, one.egress
			}
		})
		clip := testVideo(t, 2, 320, 240)
		ann := one.user("user")
		c := one.tusCreate(ann, len(clip), tusMeta("title", "Two replicas", "filename", "two.mp4"))
		if c.status != 201 {
			t.Fatalf("create: %d %s", c.status, c.raw)
		}
		path := strings.TrimPrefix(c.header.Get("Location"), one.srv.URL)

		// A PATCH on the first replica sends part of its body and stalls,
		// holding the upload.
		conn, err := net.Dial("tcp", one.srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"+
			"Content-Type: application/offset+octet-stream\r\nContent-Length: %d\r\n\r\n", path, ann.token, len(clip))
		sent := len(clip) / 3
		if _, err := conn.Write(clip[:sent]); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, func() string {
			fi, err := os.Stat(filepath.Join(dir, path[strings.LastIndex(path, "/")+1:]))
			if err != nil || fi.Size() == 0 {
				return "the first replica has not begun writing"
			}
			return ""
		})

		// The second replica is asked for the upload: the stalled PATCH is
		// told to let go, and the second answers once it has.
		offset, r := two.tusOffset(ann, path)
		if r.status != 200 || offset <= 0 || offset > sent {
			t.Fatalf("HEAD on the other replica: %d, offset %d of %d sent", r.status, offset, sent)
		}
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("the stalled PATCH's answer: %v", err)
		}
		_ = res.Body.Close()
		if res.StatusCode != 400 || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("the stalled PATCH: %d %v", res.StatusCode, res.Header)
		}
		// Nothing more reaches the file from the first replica.
		if again, _ := two.tusOffset(ann, path); again != offset {
			t.Fatalf("offset moved from %d to %d after the first let go", offset, again)
		}

		done := two.tusPatch(ann, path, offset, clip[offset:])
		if done.status != 204 || done.header.Get("Upload-Offset") != strconv.Itoa(len(clip)) {
			t.Fatalf("last chunk on the other replica: %d %s", done.status, done.raw)
		}
		id := done.header.Get(videos.VideoIDHeader)
		if v := one.do("GET", "/api/v1/videos/"+id, ann.token, nil).video(t); v["status"] != "ready" || v["size_bytes"] != float64(len(clip)) {
			t.Fatalf("video %v", v)
		}
		var same bool
		for _, f := range two.blobFiles() {
			b, err := os.ReadFile(filepath.Join(two.dirs.blobs, f))
			same = same || (err == nil && bytes.Equal(b, clip))
		}
		if !same {
			t.Fatalf("no stored object holds the uploaded bytes: %v", two.blobFiles())
		}
	}, videos.Migrations(), videos.MigrationTable)
}
