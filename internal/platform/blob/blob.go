// Package blob stores video bytes. A Store keeps immutable-per-version
// objects under slash-separated keys such as "videos/<uuid>/video.mp4" and
// hands them back as seekable, ranged readers so the HTTP layer can serve
// Range requests with http.ServeContent.
//
// Two implementations exist and pass the same contract suite (package
// blobtest): Disk, a directory on the local filesystem, and S3, any
// S3-compatible object store reached with minio-go.
//
// Every Put is all-or-nothing: the object becomes visible only once all of
// its bytes have been stored, and a Put that fails (reader error, size
// mismatch, cancelled context) leaves whatever was stored under the key
// before untouched.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Info describes a stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
	// ETag is an opaque validator that stays the same while the object is
	// unchanged and changes when it is overwritten. It is not quoted.
	ETag string
}

// Errors returned by stores. Test for them with errors.Is.
var (
	// ErrNotFound means no object exists under the key.
	ErrNotFound = errors.New("blob: not found")
	// ErrInvalidKey means the key failed ValidateKey.
	ErrInvalidKey = errors.New("blob: invalid key")
	// ErrSizeMismatch means Put was given a size and the reader delivered
	// fewer or more bytes.
	ErrSizeMismatch = errors.New("blob: size mismatch")
)

// Object is an open object for ranged reads. It implements io.ReadSeeker
// and io.ReaderAt so http.ServeContent can serve ranges from it. Objects
// returned by Disk also implement syscall.Conn, which lets package net
// send them with sendfile; S3 objects read through the context given to
// Open.
type Object interface {
	io.ReadSeekCloser
	io.ReaderAt
	Info() Info
}

// Store keeps objects under keys.
type Store interface {
	// Put stores r under key, reading it as a stream (never whole in
	// memory). size is the expected length or -1 if unknown. If r returns
	// an error, or fewer or more bytes than a non-negative size, or ctx is
	// cancelled, nothing new is left behind under key (a previous object
	// stays as it was) and an error is returned; a reader's error is
	// wrapped (errors.Is works) and a size mismatch wraps ErrSizeMismatch.
	// The returned Info has Size = bytes actually written.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (Info, error)
	// Open returns the object under key, or ErrNotFound. The caller must
	// Close it.
	Open(ctx context.Context, key string) (Object, error)
	// Stat describes the object under key, or returns ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes the object under key. Deleting a missing key is not
	// an error.
	Delete(ctx context.Context, key string) error
	// Ping reports whether the store is usable (for readiness probes).
	Ping(ctx context.Context) error
	// List calls fn with every object whose key starts with prefix ("" for
	// all), in no promised order, and stops at fn's first error, which it
	// returns. Objects put or deleted while it runs may or may not be
	// seen; uploads in progress are not objects yet and never are.
	List(ctx context.Context, prefix string, fn func(Info) error) error
}

// Importer is implemented by stores that can take a complete local file
// more cheaply than Put can copy a stream: Disk moves it into place with
// a rename when it is on the store's filesystem (one write of the bytes
// instead of two); S3 uploads it from the file.
type Importer interface {
	// Import stores the file at path under key with the guarantees of
	// Put: size is the expected length or -1, and on any failure (the
	// file missing or of another size, a cancelled ctx) nothing new is
	// left under key and an error is returned. On success the file may
	// have become the object (Disk): the caller must not reuse path, and
	// removes whatever is left there, as it does after a failure.
	Import(ctx context.Context, key, path string, size int64, contentType string) (Info, error)
}

// PutFile stores the local file at path under key: through Import when s
// is an Importer, otherwise by Put from the open file. The caller removes
// whatever is left at path afterwards (see Importer).
func PutFile(ctx context.Context, s Store, key, path string, size int64, contentType string) (Info, error) {
	if im, ok := s.(Importer); ok {
		return im.Import(ctx, key, path, size, contentType)
	}
	return putFromFile(ctx, s, key, path, size, contentType)
}

func putFromFile(ctx context.Context, s Store, key, path string, size int64, contentType string) (Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return Info{}, fmt.Errorf("blob: put %q: %w", key, err)
	}
	defer func() { _ = f.Close() }()
	return s.Put(ctx, key, f, size, contentType)
}

// MaxKeyLen is the longest key accepted, in bytes.
const MaxKeyLen = 512

// maxSegmentLen keeps every key segment a valid file name on common
// filesystems.
const maxSegmentLen = 255

// ValidateKey reports whether key is acceptable to every Store: one or more
// segments separated by single slashes, no leading or trailing slash, each
// segment made of ASCII letters, digits, '.', '_' and '-', not starting
// with '.' (which also rules out "." and ".."), at most 255 bytes per
// segment and MaxKeyLen bytes in all. The error wraps ErrInvalidKey.
func ValidateKey(key string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidKey, truncate(key, 80), why)
	}
	if key == "" {
		return bad("empty")
	}
	if len(key) > MaxKeyLen {
		return bad(fmt.Sprintf("longer than %d bytes", MaxKeyLen))
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" {
			return bad("empty segment (leading, trailing or double slash)")
		}
		if seg[0] == '.' {
			return bad("segment starts with '.'")
		}
		if len(seg) > maxSegmentLen {
			return bad(fmt.Sprintf("segment longer than %d bytes", maxSegmentLen))
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			switch {
			case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
				c == '.', c == '_', c == '-':
			default:
				return bad(fmt.Sprintf("character %q not allowed", c))
			}
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// sourceReader wraps the reader given to Put. It enforces a declared size,
// observes ctx, and turns every failure into a sticky error that is never
// io.EOF or io.ErrUnexpectedEOF (which upload code may take for a clean
// end of input).
//
// When the declared size has been reached it reads once more to prove the
// source is exhausted before handing out the final bytes, so a consumer
// that stops reading at exactly size bytes still sees a too-long source as
// an error.
type sourceReader struct {
	ctx  context.Context
	r    io.Reader
	size int64 // declared size, or -1
	n    int64 // bytes handed out
	err  error // sticky failure
	eof  bool  // source proven exhausted (and size matched)
}

func newSourceReader(ctx context.Context, r io.Reader, size int64) *sourceReader {
	if size < 0 {
		size = -1
	}
	return &sourceReader{ctx: ctx, r: r, size: size}
}

func (s *sourceReader) fail(err error) (int, error) {
	if s.err == nil {
		s.err = err
	}
	return 0, s.err
}

func (s *sourceReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.eof {
		return 0, io.EOF
	}
	if err := s.ctx.Err(); err != nil {
		return s.fail(err)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if s.size >= 0 {
		rem := s.size - s.n
		if rem == 0 {
			if err := s.probe(); err != nil {
				return s.fail(err)
			}
			return 0, io.EOF
		}
		if int64(len(p)) > rem {
			p = p[:rem]
		}
	}
	n, err := s.r.Read(p)
	if n < 0 || n > len(p) {
		return s.fail(fmt.Errorf("blob: reading source: invalid count %d from Read", n))
	}
	switch {
	case err == io.EOF:
		if s.size >= 0 && s.n+int64(n) < s.size {
			return s.fail(fmt.Errorf("%w: source ended after %d bytes, expected %d", ErrSizeMismatch, s.n+int64(n), s.size))
		}
		s.n += int64(n)
		s.eof = true
		return n, io.EOF
	case err != nil:
		// Any bytes that came with the error are dropped: the Put fails.
		return s.fail(fmt.Errorf("blob: reading source: %w", err))
	}
	s.n += int64(n)
	if s.size >= 0 && s.n == s.size {
		if err := s.probe(); err != nil {
			return s.fail(err)
		}
		return n, io.EOF
	}
	return n, nil
}

// probe checks that the source has nothing after the declared size.
func (s *sourceReader) probe() error {
	var b [1]byte
	for range 100 {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		n, err := s.r.Read(b[:])
		if n > 0 {
			if s.size < 0 {
				return errors.New("blob: source was not read to the end")
			}
			return fmt.Errorf("%w: source has more than the expected %d bytes", ErrSizeMismatch, s.size)
		}
		if err == io.EOF {
			s.eof = true
			return nil
		}
		if err != nil {
			return fmt.Errorf("blob: reading source: %w", err)
		}
	}
	return fmt.Errorf("blob: reading source: %w", io.ErrNoProgress)
}

// finish reports whether the whole source was consumed cleanly; it is
// called after the bytes were handed to storage.
func (s *sourceReader) finish() error {
	if s.err != nil {
		return s.err
	}
	if !s.eof {
		// The consumer stopped before the end; find out whether anything
		// is left. For a declared size this can only happen when the
		// consumer read fewer bytes than that.
		if s.size >= 0 && s.n < s.size {
			return fmt.Errorf("%w: only %d of %d bytes were stored", ErrSizeMismatch, s.n, s.size)
		}
		if err := s.probe(); err != nil {
			s.err = err
			return err
		}
	}
	return nil
}
