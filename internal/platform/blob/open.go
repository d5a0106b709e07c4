package blob

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// OpenOption configures Open.
type OpenOption func(*openConfig)

type openConfig struct {
	getenv func(string) string
}

// WithEnv lets Open fall back to AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
// and AWS_SESSION_TOKEN, looked up with getenv (typically os.Getenv), for
// credentials an s3:// URL does not contain. Without it Open reads no
// environment.
func WithEnv(getenv func(string) string) OpenOption {
	return func(c *openConfig) { c.getenv = getenv }
}

// Open opens the store a storage URL names:
//
//   - "" opens a disk store in defaultDir;
//   - "file:///abs/dir" or a bare path ("/var/lib/reel/blobs", "data/blobs")
//     opens a disk store there (see NewDisk);
//   - "s3://bucket[/prefix]?endpoint=host:port&region=us-east-1&insecure=true&access_key=...&secret_key=..."
//     opens an S3 store (see ParseS3URL for all parameters).
func Open(ctx context.Context, rawURL string, defaultDir string, opts ...OpenOption) (Store, error) {
	var oc openConfig
	for _, o := range opts {
		o(&oc)
	}
	if strings.HasPrefix(strings.ToLower(rawURL), "s3:") {
		cfg, err := ParseS3URL(rawURL, oc.getenv)
		if err != nil {
			return nil, err
		}
		return NewS3(ctx, cfg)
	}
	dir, err := LocalDir(rawURL, defaultDir)
	if err != nil {
		return nil, err
	}
	return NewDisk(dir)
}

// ErrNotLocal is LocalDir's answer for a store that is not a directory.
var ErrNotLocal = errors.New("blob: not a disk store")

// LocalDir returns the directory of a disk store's URL (as Open reads
// it, without opening or creating anything), or ErrNotLocal for an s3://
// URL.
func LocalDir(rawURL, defaultDir string) (string, error) {
	lower := strings.ToLower(rawURL)
	switch {
	case rawURL == "":
		if defaultDir == "" {
			return "", errors.New("blob: no storage URL and no default directory")
		}
		return defaultDir, nil
	case strings.HasPrefix(lower, "file:"):
		u, err := url.Parse(rawURL)
		if err != nil {
			return "", fmt.Errorf("blob: storage URL: %w", err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return "", fmt.Errorf("blob: file URL %q: host must be empty (use file:///abs/dir)", rawURL)
		}
		if u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" || !filepath.IsAbs(filepath.FromSlash(u.Path)) {
			return "", fmt.Errorf("blob: file URL %q: want file:///absolute/dir", rawURL)
		}
		return filepath.FromSlash(u.Path), nil
	case strings.HasPrefix(lower, "s3:"):
		return "", ErrNotLocal
	case strings.Contains(rawURL, "://"):
		return "", fmt.Errorf("blob: storage URL %q: unsupported scheme (want file:// or s3://)", RedactURL(rawURL))
	default:
		return rawURL, nil
	}
}

// ParseS3URL parses "s3://bucket[/prefix]?query" into an S3Config. Query
// parameters (values URL-encoded):
//
//	endpoint=host:port    S3 API address (default s3.amazonaws.com)
//	region=us-east-1      bucket region (default: looked up)
//	insecure=true         plain HTTP instead of HTTPS
//	path_style=true       force path-style requests
//	access_key=...        credentials; if absent, taken from
//	secret_key=...        AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
//	session_token=...     AWS_SESSION_TOKEN via getenv (may be nil)
//	create_bucket=true    create the bucket if it does not exist
//	part_size=16MiB       multipart part size (bytes, or with KiB/MiB/GiB)
//
// Unknown parameters are an error.
func ParseS3URL(rawURL string, getenv func(string) string) (S3Config, error) {
	var cfg S3Config
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error would echo the whole URL, credentials included.
		return cfg, fmt.Errorf("blob: malformed s3 URL %q", RedactURL(rawURL))
	}
	if !strings.EqualFold(u.Scheme, "s3") || u.Opaque != "" {
		return cfg, fmt.Errorf("blob: %q is not an s3://bucket URL", RedactURL(rawURL))
	}
	if u.User != nil {
		return cfg, errors.New("blob: s3 URL: put credentials in access_key/secret_key parameters, not user:pass@")
	}
	cfg.Bucket = u.Host
	cfg.Prefix = strings.Trim(u.Path, "/")
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return cfg, errors.New("blob: s3 URL: malformed query")
	}
	for k, vs := range q {
		v := vs[len(vs)-1]
		var err error
		switch k {
		case "endpoint":
			cfg.Endpoint = v
		case "region":
			cfg.Region = v
		case "insecure":
			cfg.Insecure, err = strconv.ParseBool(v)
		case "path_style":
			cfg.PathStyle, err = strconv.ParseBool(v)
		case "access_key":
			cfg.AccessKey = v
		case "secret_key":
			cfg.SecretKey = v
		case "session_token":
			cfg.SessionToken = v
		case "create_bucket":
			cfg.CreateBucket, err = strconv.ParseBool(v)
		case "part_size":
			cfg.PartSize, err = parseBytes(v)
		default:
			return cfg, fmt.Errorf("blob: s3 URL: unknown parameter %q", k)
		}
		if err != nil {
			return cfg, fmt.Errorf("blob: s3 URL: parameter %s: %w", k, err)
		}
	}
	if getenv != nil && cfg.AccessKey == "" && cfg.SecretKey == "" {
		cfg.AccessKey = getenv("AWS_ACCESS_KEY_ID")
		cfg.SecretKey = getenv("AWS_SECRET_ACCESS_KEY")
		if cfg.SessionToken == "" {
			cfg.SessionToken = getenv("AWS_SESSION_TOKEN")
		}
	}
	if cfg.Bucket == "" {
		return cfg, errors.New("blob: s3 URL: missing bucket (s3://bucket?...)")
	}
	return cfg, nil
}

// parseBytes parses "16777216", "16MiB", "16M", "512KiB", "1GiB" (binary
// units).
func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	lower := strings.ToLower(t)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30},
		{"b", 1},
	} {
		if strings.HasSuffix(lower, u.suffix) {
			mult = u.mult
			t = strings.TrimSpace(t[:len(t)-len(u.suffix)])
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// RedactURL returns a storage URL safe to log: the values of secret_key
// and session_token (and any user:password) are replaced.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		if i := strings.IndexAny(rawURL, "?@"); i >= 0 {
			return rawURL[:i] + "?REDACTED"
		}
		return rawURL
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = "REDACTED"
		} else {
			for _, k := range []string{"secret_key", "session_token"} {
				if q.Has(k) {
					q.Set(k, "REDACTED")
				}
			}
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}
