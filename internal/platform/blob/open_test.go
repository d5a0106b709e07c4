package blob_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reel-video/reel/internal/platform/blob"
)

func TestOpenDisk(t *testing.T) {
	dir := t.TempDir()
	for _, raw := range []string{"", "file://" + filepath.ToSlash(dir) + "/sub", dir + "/bare"} {
		s, err := blob.Open(t.Context(), raw, dir+"/default")
		if err != nil {
			t.Fatalf("Open(%q): %v", raw, err)
		}
		if _, ok := s.(*blob.Disk); !ok {
			t.Fatalf("Open(%q) = %T, want *blob.Disk", raw, s)
		}
	}
	s, _ := blob.Open(t.Context(), "", dir+"/default")
	if got := s.(*blob.Disk).Dir(); got != filepath.Join(dir, "default") {
		t.Fatalf("default dir: %s", got)
	}
	for _, raw := range []string{"file://host/x", "file:relative", "file:///x?y=1", "ftp://x/y", "gs://bucket"} {
		if _, err := blob.Open(t.Context(), raw, dir); err == nil {
			t.Errorf("Open(%q) succeeded", raw)
		}
	}
	if _, err := blob.Open(t.Context(), "", ""); err == nil {
		t.Error(`Open("", "") succeeded`)
	}
}

func TestParseS3URL(t *testing.T) {
	env := map[string]string{"AWS_ACCESS_KEY_ID": "envak", "AWS_SECRET_ACCESS_KEY": "envsk", "AWS_SESSION_TOKEN": "envtok"}
	getenv := func(k string) string { return env[k] }

	cfg, err := blob.ParseS3URL("s3://my-bucket/some/prefix?endpoint=127.0.0.1:9000&region=eu-west-1&insecure=true&access_key=ak&secret_key=s%2Fk&create_bucket=1&part_size=32MiB&path_style=true", getenv)
	if err != nil {
		t.Fatal(err)
	}
	want := blob.S3Config{
		Endpoint: "127.0.0.1:9000", Bucket: "my-bucket", Prefix: "some/prefix", Region: "eu-west-1",
		AccessKey: "ak", SecretKey: "s/k", Insecure: true, PathStyle: true, PartSize: 32 << 20, CreateBucket: true,
	}
	if cfg != want {
		t.Fatalf("ParseS3URL =\n%+v\nwant\n%+v", cfg, want)
	}

	cfg, err = blob.ParseS3URL("s3://b", getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AccessKey != "envak" || cfg.SecretKey != "envsk" || cfg.SessionToken != "envtok" || cfg.Insecure {
		t.Fatalf("env fallback: %+v", cfg)
	}
	cfg, err = blob.ParseS3URL("s3://b", nil)
	if err != nil || cfg.AccessKey != "" {
		t.Fatalf("nil getenv: %+v, %v", cfg, err)
	}

	for _, raw := range []string{
		"s3://", "s3://b?bogus=1", "s3://b?insecure=maybe", "s3://b?part_size=lots",
		"s3://ak:sk@b", "s3:b", "s3://b?%zz",
	} {
		if _, err := blob.ParseS3URL(raw, nil); err == nil {
			t.Errorf("ParseS3URL(%q) succeeded", raw)
		}
	}
}

func TestNewS3Validation(t *testing.T) {
	ok := blob.S3Config{Endpoint: "127.0.0.1:1", Bucket: "bucket", AccessKey: "a", SecretKey: "b", Insecure: true}
	if _, err := blob.NewS3(t.Context(), ok); err != nil {
		t.Fatalf("NewS3 (no network expected): %v", err)
	}
	for name, mod := range map[string]func(*blob.S3Config){
		"no credentials": func(c *blob.S3Config) { c.AccessKey, c.SecretKey = "", "" },
		"bad bucket":     func(c *blob.S3Config) { c.Bucket = "Bad_Bucket" },
		"no bucket":      func(c *blob.S3Config) { c.Bucket = "" },
		"small part":     func(c *blob.S3Config) { c.PartSize = 1 << 20 },
		"scheme":         func(c *blob.S3Config) { c.Endpoint = "http://127.0.0.1:1" },
		"bad prefix":     func(c *blob.S3Config) { c.Prefix = "a/../b" },
	} {
		c := ok
		mod(&c)
		if _, err := blob.NewS3(t.Context(), c); err == nil {
			t.Errorf("%s: NewS3 succeeded", name)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for _, raw := range []string{
		"s3://b?endpoint=x&access_key=AK&secret_key=SUPERSECRET&session_token=SUPERSECRET2",
		"s3://user:SUPERSECRET@b",
	} {
		got := blob.RedactURL(raw)
		if strings.Contains(got, "SUPERSECRET") {
			t.Errorf("RedactURL(%q) = %q", raw, got)
		}
	}
	if got := blob.RedactURL("s3://b?access_key=AK"); !strings.Contains(got, "AK") {
		t.Errorf("access key should stay visible: %q", got)
	}
	_, err := blob.Open(t.Context(), "s3://b?secret_key=SUPERSECRET&bogus=1", "")
	if err == nil || strings.Contains(err.Error(), "SUPERSECRET") {
		t.Errorf("error leaks or missing: %v", err)
	}
}

func TestValidateKey(t *testing.T) {
	for _, k := range []string{"a", "videos/0f8fad5b-d9cb-469f-a165-70867728950e/video.mp4", "a.b_c-D9"} {
		if err := blob.ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q) = %v", k, err)
		}
	}
	err := blob.ValidateKey("a/../b")
	if !errors.Is(err, blob.ErrInvalidKey) {
		t.Errorf("ValidateKey(a/../b) = %v", err)
	}
}
