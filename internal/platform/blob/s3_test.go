package blob_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/blob/blobtest"
)

// testPartSize is the smallest S3 allows, so multipart paths run with
// modest test data.
const testPartSize = blob.MinPartSize

// s3Config returns the configuration from REEL_TEST_S3_URL (see
// scripts/s3.sh) with a fresh bucket for this test, removed at cleanup.
// Without a server the test is skipped, or fails when CI=true.
func s3Config(t *testing.T) blob.S3Config {
	t.Helper()
	raw := os.Getenv("REEL_TEST_S3_URL")
	if raw == "" {
		const msg = "S3 NOT AVAILABLE: run scripts/test.sh (or `source scripts/s3.sh && s3_start`) to test the S3 store; REEL_TEST_S3_URL is empty"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("!!!!! " + msg + " !!!!!")
	}
	cfg, err := blob.ParseS3URL(raw, os.Getenv)
	if err != nil {
		t.Fatalf("REEL_TEST_S3_URL: %v", err)
	}
	var id [5]byte
	_, _ = rand.Read(id[:])
	cfg.Bucket = "reel-test-" + hex.EncodeToString(id[:])
	cfg.CreateBucket = true
	cfg.PartSize = testPartSize
	t.Cleanup(func() { removeBucket(t, cfg) })
	return cfg
}

func minioClient(t *testing.T, cfg blob.S3Config) *minio.Client {
	t.Helper()
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken),
		Secure: !cfg.Insecure,
		Region: cfg.Region,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// removeBucket empties and removes the test bucket.
func removeBucket(t *testing.T, cfg blob.S3Config) {
	c := minioClient(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if ok, err := c.BucketExists(ctx, cfg.Bucket); err != nil || !ok {
		return
	}
	for u := range c.ListIncompleteUploads(ctx, cfg.Bucket, "", true) {
		if u.Err == nil {
			_ = c.RemoveIncompleteUpload(ctx, cfg.Bucket, u.Key)
		}
	}
	objs := c.ListObjects(ctx, cfg.Bucket, minio.ListObjectsOptions{Recursive: true})
	for res := range c.RemoveObjects(ctx, cfg.Bucket, objs, minio.RemoveObjectsOptions{}) {
		t.Logf("cleanup: removing %s: %v", res.ObjectName, res.Err)
	}
	if err := c.RemoveBucket(ctx, cfg.Bucket); err != nil {
		t.Logf("cleanup: removing bucket %s: %v", cfg.Bucket, err)
	}
}

func TestS3Contract(t *testing.T) {
	cfg := s3Config(t)
	s, err := blob.NewS3(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	blobtest.Run(t, s, blobtest.Options{
		// One part buffered by the client, plus garbage between GCs.
		MaxHeapGrowth: 3*testPartSize + 8<<20,
	})

	// Failed Puts (including multipart ones) must not leave incomplete
	// uploads behind.
	c := minioClient(t, cfg)
	for u := range c.ListIncompleteUploads(context.Background(), cfg.Bucket, "", true) {
		if u.Err != nil {
			t.Fatalf("listing incomplete uploads: %v", u.Err)
		}
		t.Errorf("incomplete multipart upload left behind: key %s, id %s", u.Key, u.UploadID)
	}
}

func TestS3Prefix(t *testing.T) {
	cfg := s3Config(t)
	cfg.Prefix = "deploy-a/"
	s, err := blob.NewS3(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "videos/x/video.mp4", strings.NewReader("abc"), 3, "video/mp4"); err != nil {
		t.Fatal(err)
	}
	oi, err := minioClient(t, cfg).StatObject(t.Context(), cfg.Bucket, "deploy-a/videos/x/video.mp4", minio.StatObjectOptions{})
	if err != nil {
		t.Fatalf("object not stored under the prefix: %v", err)
	}
	if oi.Size != 3 || oi.ContentType != "video/mp4" {
		t.Fatalf("stored object: size %d, content type %q", oi.Size, oi.ContentType)
	}
	other := cfg
	other.Prefix = "deploy-b"
	s2, err := blob.NewS3(t.Context(), other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Stat(t.Context(), "videos/x/video.mp4"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("another prefix sees the object: %v", err)
	}
}

func TestS3OpenURL(t *testing.T) {
	cfg := s3Config(t)
	u, err := url.Parse(os.Getenv("REEL_TEST_S3_URL"))
	if err != nil {
		t.Fatal(err)
	}
	u.Host = cfg.Bucket
	q := u.Query()
	q.Set("create_bucket", "true")
	q.Set("part_size", "5MiB")
	u.RawQuery = q.Encode()
	s, err := blob.Open(t.Context(), u.String(), "/nonexistent", blob.WithEnv(os.Getenv))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*blob.S3); !ok {
		t.Fatalf("Open(s3 URL) = %T", s)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	// Credentials from the environment.
	q.Del("access_key")
	q.Del("secret_key")
	u.RawQuery = q.Encode()
	env := map[string]string{"AWS_ACCESS_KEY_ID": cfg.AccessKey, "AWS_SECRET_ACCESS_KEY": cfg.SecretKey}
	s, err = blob.Open(t.Context(), u.String(), "", blob.WithEnv(func(k string) string { return env[k] }))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping with credentials from env: %v", err)
	}
}

func TestS3PingFailures(t *testing.T) {
	cfg := s3Config(t)
	missing := cfg
	missing.CreateBucket = false
	missing.Bucket = cfg.Bucket + "-missing"
	s, err := blob.NewS3(t.Context(), missing)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Fatal("Ping of a missing bucket succeeded")
	}

	s, err = blob.NewS3(t.Context(), cfg) // creates the bucket
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	bad := cfg
	bad.CreateBucket = false
	bad.SecretKey = "wrong-secret"
	s, err = blob.NewS3(t.Context(), bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Fatal("Ping with a wrong secret key succeeded")
	}
	if _, err := s.Put(t.Context(), "x", strings.NewReader("x"), 1, ""); err == nil {
		t.Fatal("Put with a wrong secret key succeeded")
	}
}

// TestS3ReadAfterOverwrite checks that an open object does not serve bytes
// of a newer version.
func TestS3ReadAfterOverwrite(t *testing.T) {
	cfg := s3Config(t)
	s, err := blob.NewS3(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "k", strings.NewReader("version one"), -1, ""); err != nil {
		t.Fatal(err)
	}
	o, err := s.Open(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := s.Put(t.Context(), "k", strings.NewReader("version two"), -1, ""); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 11)
	if n, err := o.ReadAt(p, 0); err == nil {
		t.Fatalf("ReadAt after overwrite returned %q without error", p[:n])
	}
	if err := s.Delete(t.Context(), "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := o.ReadAt(p, 0); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("ReadAt after delete: %v; want ErrNotFound", err)
	}
}
