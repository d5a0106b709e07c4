package videos_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/blob"
)

// s3URL is the test S3 server's URL (REEL_TEST_S3_URL, started by
// scripts/s3.sh): the test is skipped without one, and failed under CI.
func s3URL(t *testing.T) string {
	t.Helper()
	raw := os.Getenv("REEL_TEST_S3_URL")
	if raw == "" {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal("REEL_TEST_S3_URL is empty but CI is set: run scripts/test.sh")
		}
		t.Skip("S3 NOT AVAILABLE: source scripts/s3.sh && s3_start")
	}
	return raw
}

// s3Store opens a fresh bucket on the test S3 server.
func s3Store(t testing.TB, raw string) blob.Store {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	u.Host = "videos-" + hex.EncodeToString(b[:])
	q := u.Query()
	q.Set("create_bucket", "true")
	u.RawQuery = q.Encode()
	s, err := blob.Open(context.Background(), u.String(), "")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The whole life of a video with its bytes in S3: upload, ranged
// playback (ServeContent over ranged S3 reads), trash and purge.
func TestVideoOnS3(t *testing.T) {
	raw := s3URL(t)
	var store blob.Store
	withEnv(t, func(t *testing.T, e *env) {
		clip := testVideo(t, 2, 320, 240)
		ann := e.user("user")
		id := e.mustUpload(ann, "in the cloud", clip)
		url, poster := e.play(ann, id)
		for _, c := range []struct {
			rng      string
			from, to int
		}{{"bytes=0-0", 0, 1}, {"bytes=-10", len(clip) - 10, len(clip)}, {"bytes=1000-", 1000, 1000 + testChunk}, {"bytes=500-1499", 500, 1500}} {
			r := e.do("GET", url, "", nil, "Range", c.rng)
			if r.status != 206 || !bytes.Equal(r.raw, clip[c.from:c.to]) {
				t.Fatalf("%s: %d, %d bytes", c.rng, r.status, len(r.raw))
			}
		}
		if r := e.do("GET", url, "", nil); r.status != 200 || !bytes.Equal(r.raw, clip) {
			t.Fatalf("whole: %d", r.status)
		}
		if r := e.do("GET", poster, "", nil); r.status != 200 || r.header.Get("Content-Type") != "image/jpeg" {
			t.Fatalf("poster: %d", r.status)
		}
		if r := e.do("DELETE", "/api/v1/videos/"+id, ann.token, nil); r.status != 204 {
			t.Fatalf("delete: %d", r.status)
		}
		e.advance(31 * 24 * time.Hour)
		if n, err := e.svc.Purge(context.Background()); err != nil || n != 1 {
			t.Fatalf("purge: %d %v", n, err)
		}
		for _, key := range []string{"videos/" + id + "/video.mp4", "videos/" + id + "/poster.jpg"} {
			if _, err := store.Stat(context.Background(), key); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("%s after purge: %v", key, err)
			}
		}
		if len(e.blobFiles()) != 0 {
			t.Fatal("bytes went to the disk, not S3")
		}
	}, func(c *envConfig) {
		c.chunk = testChunk
		c.blobs = func(blob.Store) blob.Store { store = s3Store(t, raw); return store }
	})
}
