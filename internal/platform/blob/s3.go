package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Part sizes for multipart uploads. S3 requires at least 5 MiB per part
// (except the last) and allows at most 10,000 parts, so the default allows
// objects up to about 156 GiB.
const (
	DefaultPartSize = 16 << 20
	MinPartSize     = 5 << 20
	MaxPartSize     = 5 << 30
)

// S3Config configures an S3 store.
type S3Config struct {
	// Endpoint is host or host:port of the S3 API, without scheme.
	// Empty means "s3.amazonaws.com".
	Endpoint string
	// Bucket holds the objects.
	Bucket string
	// Prefix, if set, is prepended (with a '/') to every key, so several
	// deployments or test runs can share a bucket. It must itself be a
	// valid key.
	Prefix string
	// Region is the bucket's region. Empty lets the client look it up.
	Region string
	// Credentials. AccessKey and SecretKey are required.
	AccessKey, SecretKey, SessionToken string
	// Insecure selects plain HTTP instead of HTTPS.
	Insecure bool
	// PathStyle forces path-style requests (http://host/bucket/key)
	// instead of the client's automatic choice.
	PathStyle bool
	// PartSize is the multipart upload part size in bytes; 0 means
	// DefaultPartSize. A Put holds one part in memory when the object is
	// larger than a part or its size is unknown.
	PartSize int64
	// CreateBucket makes NewS3 create Bucket if it does not exist.
	CreateBucket bool
	// Transport is the HTTP transport; nil means the minio default.
	Transport http.RoundTripper
}

// S3 stores objects in an S3-compatible bucket.
//
// Put streams: objects up to PartSize are sent in one PUT straight from
// the reader; larger ones, and ones of unknown size, use a multipart upload
// holding one part in memory at a time, which is aborted if anything goes
// wrong, so a failed Put leaves no object and no incomplete upload.
//
// Objects returned by Open read with ranged GETs conditional on the ETag
// seen by Open (If-Match), so a reader never mixes bytes of two versions:
// if the object is overwritten while open, reads fail instead.
type S3 struct {
	client   *minio.Client
	core     minio.Core
	bucket   string
	prefix   string // "" or ends with "/"
	partSize int64
	endpoint string
}

var _ Store = (*S3)(nil)

// NewS3 returns an S3 store. It contacts the server only when
// cfg.CreateBucket is set; use Ping to check connectivity.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if cfg.Endpoint == "" {
		cfg.Endpoint = "s3.amazonaws.com"
	}
	if strings.Contains(cfg.Endpoint, "://") || strings.Contains(cfg.Endpoint, "/") {
		return nil, fmt.Errorf("blob: s3 endpoint %q must be host[:port] without scheme or path", cfg.Endpoint)
	}
	if err := s3utils.CheckValidBucketNameStrict(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("blob: s3 bucket %q: %w", cfg.Bucket, err)
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		if err := ValidateKey(prefix); err != nil {
			return nil, fmt.Errorf("blob: s3 prefix: %w", err)
		}
		prefix += "/"
	}
	switch {
	case cfg.PartSize == 0:
		cfg.PartSize = DefaultPartSize
	case cfg.PartSize < MinPartSize || cfg.PartSize > MaxPartSize:
		return nil, fmt.Errorf("blob: s3 part size %d not in [%d, %d]", cfg.PartSize, MinPartSize, MaxPartSize)
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("blob: s3 needs an access key and a secret key")
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken),
		Secure:       !cfg.Insecure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    cfg.Transport,
	})
	if err != nil {
		return nil, fmt.Errorf("blob: s3 client: %w", err)
	}
	s := &S3{
		client:   client,
		core:     minio.Core{Client: client},
		bucket:   cfg.Bucket,
		prefix:   prefix,
		partSize: cfg.PartSize,
		endpoint: cfg.Endpoint,
	}
	if cfg.CreateBucket {
		if err := s.ensureBucket(ctx, cfg.Region); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *S3) ensureBucket(ctx context.Context, region string) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("blob: s3 bucket %q: %w", s.bucket, err)
	}
	if ok {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region})
	if err != nil {
		code := minio.ToErrorResponse(err).Code
		if code == minio.BucketAlreadyOwnedByYou {
			return nil // created concurrently
		}
		return fmt.Errorf("blob: s3 create bucket %q: %w", s.bucket, err)
	}
	return nil
}

// Bucket returns the bucket name.
func (s *S3) Bucket() string { return s.bucket }

// String describes the store without credentials.
func (s *S3) String() string {
	return "s3://" + s.bucket + "/" + s.prefix + " at " + s.endpoint
}

func (s *S3) name(key string) string { return s.prefix + key }

// Put implements Store.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	if size < 0 {
		size = -1
	}
	src := newSourceReader(ctx, r, size)
	var body io.Reader = src
	switch {
	case size == 0:
		// The client may send an empty body without reading the source;
		// check it is empty before anything is stored.
		if err := src.finish(); err != nil {
			return Info{}, fmt.Errorf("blob: put %q: %w", key, err)
		}
	case size < 0:
		// Peek, so an empty source becomes a plain empty PUT rather than
		// a multipart upload of one empty part.
		var first [1]byte
		switch _, err := io.ReadFull(src, first[:]); {
		case err == io.EOF:
			size = 0
		case err != nil:
			return Info{}, fmt.Errorf("blob: put %q: %w", key, err)
		default:
			body = io.MultiReader(bytes.NewReader(first[:]), src)
		}
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	name := s.name(key)
	ui, err := s.client.PutObject(ctx, s.bucket, name, body, size, minio.PutObjectOptions{
		ContentType: contentType,
		PartSize:    uint64(s.partSize),
		// Over plain HTTP the client signs the payload in aws-chunked
		// encoding; for an empty body that is a lone final chunk, which
		// versitygw leaves unread on the connection (a stray "400 Bad
		// Request" then shows up in the log). An empty body has nothing to
		// sign anyway.
		DisableContentSha256: size == 0,
	})
	if err == nil {
		if err = src.finish(); err != nil {
			// Cannot happen with the current client (the source fails
			// before the upload completes), but never keep an object
			// that does not match what the caller sent.
			_ = s.client.RemoveObject(context.WithoutCancel(ctx), s.bucket, name, minio.RemoveObjectOptions{})
		}
	}
	if err != nil {
		if src.err != nil {
			// The client's error is a consequence; report the cause.
			err = src.err
		}
		return Info{}, fmt.Errorf("blob: put %q: %w", key, err)
	}
	info := Info{Key: key, Size: src.n, ETag: ui.ETag, ModTime: ui.LastModified}
	if st, err := s.Stat(ctx, key); err == nil && st.ETag == info.ETag {
		info.ModTime = st.ModTime
	}
	if info.ModTime.IsZero() {
		info.ModTime = time.Now()
	}
	return info, nil
}

// mapErr turns a client error about key into a store error.
var _ Importer = (*S3)(nil)

// Import implements Importer by uploading the file as Put would, streamed
// from disk (in parts when it is large); the file stays at path.
func (s *S3) Import(ctx context.Context, key, path string, size int64, contentType string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, err
	}
	return putFromFile(ctx, s, key, path, size, contentType)
}

func (s *S3) mapErr(op, key string, err error) error {
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case minio.NoSuchKey, "NotFound":
		return fmt.Errorf("blob: %s %q: %w", op, key, ErrNotFound)
	}
	return fmt.Errorf("blob: %s %q: %w", op, key, err)
}

// Stat implements Store.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, err
	}
	oi, err := s.client.StatObject(ctx, s.bucket, s.name(key), minio.StatObjectOptions{})
	if err != nil {
		return Info{}, s.mapErr("stat", key, err)
	}
	return Info{Key: key, Size: oi.Size, ModTime: oi.LastModified, ETag: oi.ETag}, nil
}

// Open implements Store. Reads on the returned Object use ctx.
func (s *S3) Open(ctx context.Context, key string) (Object, error) {
	info, err := s.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	return &s3Object{s: s, ctx: ctx, name: s.name(key), info: info}, nil
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, s.bucket, s.name(key), minio.RemoveObjectOptions{})
	if err != nil {
		if err := s.mapErr("delete", key, err); errors.Is(err, ErrNotFound) {
			return nil
		}
		return fmt.Errorf("blob: delete %q: %w", key, err)
	}
	return nil
}

// List implements Store, with the bucket's listing under the store's
// prefix.
func (s *S3) List(ctx context.Context, prefix string, fn func(Info) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine when fn fails
	for oi := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.name(prefix), Recursive: true}) {
		if oi.Err != nil {
			return fmt.Errorf("blob: list %q: %w", prefix, oi.Err)
		}
		key, ok := strings.CutPrefix(oi.Key, s.prefix)
		if !ok || ValidateKey(key) != nil {
			continue
		}
		if err := fn(Info{Key: key, Size: oi.Size, ModTime: oi.LastModified, ETag: strings.Trim(oi.ETag, `"`)}); err != nil {
			return fmt.Errorf("blob: list %q: %w", prefix, err)
		}
	}
	return ctx.Err()
}

// Ping implements Store: it checks that the bucket exists and the
// credentials are accepted.
func (s *S3) Ping(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("blob: ping s3 bucket %q: %w", s.bucket, err)
	}
	if !ok {
		return fmt.Errorf("blob: ping: s3 bucket %q does not exist", s.bucket)
	}
	return nil
}

// s3Object reads an S3 object. Read streams from the current offset,
// reusing one GET while reads are sequential; ReadAt issues one ranged GET
// per call and is safe for concurrent use. Every GET carries If-Match with
// the ETag from Open.
type s3Object struct {
	s    *S3
	ctx  context.Context
	name string
	info Info

	closed atomic.Bool

	mu      sync.Mutex // guards the fields below (the Read/Seek state)
	off     int64
	body    io.ReadCloser
	bodyOff int64
}

func (o *s3Object) Info() Info { return o.info }

// get opens the byte range [off, end] (end < 0: to the end).
func (o *s3Object) get(off, end int64) (io.ReadCloser, error) {
	opts := minio.GetObjectOptions{}
	if err := opts.SetMatchETag(o.info.ETag); err != nil {
		return nil, err
	}
	if end >= 0 {
		if err := opts.SetRange(off, end); err != nil {
			return nil, err
		}
	} else if off > 0 {
		if err := opts.SetRange(off, 0); err != nil {
			return nil, err
		}
	}
	rc, _, _, err := o.s.core.GetObject(o.ctx, o.s.bucket, o.name, opts)
	if err != nil {
		if minio.ToErrorResponse(err).Code == minio.PreconditionFailed {
			return nil, fmt.Errorf("blob: read %q: object changed since it was opened: %w", o.info.Key, err)
		}
		return nil, o.s.mapErr("read", o.info.Key, err)
	}
	return rc, nil
}

func (o *s3Object) Read(p []byte) (int, error) {
	if o.closed.Load() {
		return 0, os.ErrClosed
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	if o.off >= o.info.Size {
		return 0, io.EOF
	}
	if o.body != nil && o.bodyOff != o.off {
		_ = o.body.Close()
		o.body = nil
	}
	if o.body == nil {
		rc, err := o.get(o.off, -1)
		if err != nil {
			return 0, err
		}
		o.body, o.bodyOff = rc, o.off
	}
	if rem := o.info.Size - o.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := o.body.Read(p)
	o.off += int64(n)
	o.bodyOff += int64(n)
	if err != nil {
		_ = o.body.Close()
		o.body = nil
		if err == io.EOF {
			if o.off < o.info.Size {
				err = io.ErrUnexpectedEOF
			} else if n > 0 {
				err = nil
			}
		}
	}
	return n, err
}

func (o *s3Object) ReadAt(p []byte, off int64) (int, error) {
	if o.closed.Load() {
		return 0, os.ErrClosed
	}
	if off < 0 {
		return 0, errors.New("blob: ReadAt: negative offset")
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= o.info.Size {
		return 0, io.EOF
	}
	want := int64(len(p))
	if rem := o.info.Size - off; want > rem {
		want = rem
	}
	rc, err := o.get(off, off+want-1)
	if err != nil {
		return 0, err
	}
	n, err := io.ReadFull(rc, p[:want])
	_ = rc.Close()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	}
	if want < int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

func (o *s3Object) Seek(offset int64, whence int) (int64, error) {
	if o.closed.Load() {
		return 0, os.ErrClosed
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = o.off + offset
	case io.SeekEnd:
		abs = o.info.Size + offset
	default:
		return 0, errors.New("blob: Seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("blob: Seek: negative position")
	}
	o.off = abs
	return abs, nil
}

func (o *s3Object) Close() error {
	if o.closed.Swap(true) {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.body != nil {
		_ = o.body.Close()
		o.body = nil
	}
	return nil
}
