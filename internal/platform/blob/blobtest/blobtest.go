// Package blobtest is the contract test suite every blob.Store
// implementation must pass. Call Run from a store's tests:
//
//	func TestDisk(t *testing.T) {
//		s, _ := blob.NewDisk(t.TempDir())
//		blobtest.Run(t, s, blobtest.Options{})
//	}
//
// All keys Run uses live under "contract/<random>/", so runs against a
// shared store do not collide. Subtests run one after another (the memory
// check measures the whole process heap).
package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/blob"
)

// Options tune Run for a store.
type Options struct {
	// MaxHeapGrowth bounds how much the Go heap may grow while a large
	// object is put or read back. Default 8 MiB; a store that buffers a
	// multipart part needs a few parts' worth.
	MaxHeapGrowth int64
	// LargeSize is the size of the streamed round-trip object. Default
	// 40 MiB, or 8 MiB with -short.
	LargeSize int64
}

func (o *Options) defaults() {
	if o.MaxHeapGrowth <= 0 {
		o.MaxHeapGrowth = 8 << 20
	}
	if o.LargeSize <= 0 {
		o.LargeSize = 40 << 20
		if testing.Short() {
			o.LargeSize = 8 << 20
		}
	}
}

// Run runs the contract suite against s.
func Run(t *testing.T, s blob.Store, opts Options) {
	opts.defaults()
	var id [6]byte
	_, _ = rand.Read(id[:])
	c := &suite{s: s, opts: opts, prefix: "contract/" + hex.EncodeToString(id[:]) + "/"}
	t.Logf("contract keys under %s", c.prefix)

	t.Run("Ping", c.testPing)
	t.Run("PutStatOpen", c.testPutStatOpen)
	t.Run("UnknownSize", c.testUnknownSize)
	t.Run("Empty", c.testEmpty)
	t.Run("Ranges", c.testRanges)
	t.Run("ServeContent", c.testServeContent)
	t.Run("Overwrite", c.testOverwrite)
	t.Run("Delete", c.testDelete)
	t.Run("NotFound", c.testNotFound)
	t.Run("BadKeys", c.testBadKeys)
	t.Run("FailingReader", c.testFailingReader)
	t.Run("SizeMismatch", c.testSizeMismatch)
	t.Run("Canceled", c.testCanceled)
	t.Run("LargeStream", c.testLargeStream)
	t.Run("ConcurrentPuts", c.testConcurrentPuts)
	t.Run("PutFile", c.testPutFile)
}

type suite struct {
	s      blob.Store
	opts   Options
	prefix string
}

func (c *suite) key(name string) string { return c.prefix + name }

// data returns n deterministic pseudo-random bytes for seed.
func data(seed uint64, n int64) []byte {
	b := make([]byte, n)
	_, _ = stream(seed, n).Read(b) // ChaCha8 fills p completely
	return b
}

// stream returns a deterministic reader of n bytes without holding them.
func stream(seed uint64, n int64) io.Reader {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return io.LimitReader(mrand.NewChaCha8(s), n)
}

// onlyReader hides every method but Read (bytes.Reader has ReadAt, Seek,
// WriteTo that a store must not depend on).
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func (c *suite) put(t *testing.T, key string, b []byte) blob.Info {
	t.Helper()
	info, err := c.s.Put(t.Context(), key, onlyReader{bytes.NewReader(b)}, int64(len(b)), "video/mp4")
	if err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(b), err)
	}
	return info
}

func (c *suite) readAll(t *testing.T, key string) []byte {
	t.Helper()
	o, err := c.s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	return b
}

func (c *suite) wantContent(t *testing.T, key string, want []byte) {
	t.Helper()
	got := c.readAll(t, key)
	if !bytes.Equal(got, want) {
		t.Fatalf("content of %q: got %d bytes (sha %x), want %d bytes (sha %x)",
			key, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
}

func (c *suite) wantNotFound(t *testing.T, key string) {
	t.Helper()
	if info, err := c.s.Stat(t.Context(), key); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat(%q) = %+v, %v; want ErrNotFound", key, info, err)
	}
	o, err := c.s.Open(t.Context(), key)
	if !errors.Is(err, blob.ErrNotFound) {
		if err == nil {
			o.Close()
		}
		t.Fatalf("Open(%q) error = %v; want ErrNotFound", key, err)
	}
}

func (c *suite) testPing(t *testing.T) {
	if err := c.s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func (c *suite) testPutStatOpen(t *testing.T) {
	key := c.key("videos/0f8fad5b-d9cb-469f-a165-70867728950e/video.mp4")
	b := data(1, 100_003)
	before := time.Now()
	info := c.put(t, key, b)
	if info.Key != key || info.Size != int64(len(b)) || info.ETag == "" {
		t.Fatalf("Put info = %+v; want key %q, size %d, an ETag", info, key, len(b))
	}
	if d := info.ModTime.Sub(before); d < -time.Hour || d > time.Hour {
		t.Fatalf("Put ModTime %v is far from now %v", info.ModTime, before)
	}
	if strings.ContainsAny(info.ETag, "\"\r\n") {
		t.Fatalf("ETag %q must be usable inside quotes", info.ETag)
	}

	st, err := c.s.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if st.Key != key || st.Size != info.Size || st.ETag != info.ETag {
		t.Fatalf("Stat = %+v; Put returned %+v", st, info)
	}
	if d := st.ModTime.Sub(info.ModTime); d < -time.Second || d > time.Second {
		t.Fatalf("Stat ModTime %v, Put ModTime %v", st.ModTime, info.ModTime)
	}
	if st2, err := c.s.Stat(t.Context(), key); err != nil || st2.ETag != st.ETag {
		t.Fatalf("second Stat = %+v, %v; ETag must be stable (%q)", st2, err, st.ETag)
	}

	o, err := c.s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if oi := o.Info(); oi.Key != key || oi.Size != info.Size || oi.ETag != info.ETag {
		t.Fatalf("Object.Info = %+v; want %+v", oi, info)
	}
	got, err := io.ReadAll(o)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("ReadAll: %d bytes, %v; want the %d bytes put", len(got), err, len(b))
	}
	if err := o.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n, err := o.Read(make([]byte, 10)); err == nil {
		t.Fatalf("Read after Close = %d, nil; want an error", n)
	}
}

func (c *suite) testUnknownSize(t *testing.T) {
	key := c.key("unknown/size.bin")
	b := data(2, 77_777)
	info, err := c.s.Put(t.Context(), key, onlyReader{bytes.NewReader(b)}, -1, "")
	if err != nil {
		t.Fatalf("Put size -1: %v", err)
	}
	if info.Size != int64(len(b)) {
		t.Fatalf("Put size -1: Info.Size = %d, want %d", info.Size, len(b))
	}
	if st, err := c.s.Stat(t.Context(), key); err != nil || st.Size != int64(len(b)) {
		t.Fatalf("Stat = %+v, %v", st, err)
	}
	c.wantContent(t, key, b)
}

func (c *suite) testEmpty(t *testing.T) {
	for _, size := range []int64{0, -1} {
		key := c.key(fmt.Sprintf("empty/size%d", size))
		info, err := c.s.Put(t.Context(), key, onlyReader{strings.NewReader("")}, size, "")
		if err != nil {
			t.Fatalf("Put empty (size %d): %v", size, err)
		}
		if info.Size != 0 {
			t.Fatalf("Put empty: Size %d", info.Size)
		}
		if st, err := c.s.Stat(t.Context(), key); err != nil || st.Size != 0 {
			t.Fatalf("Stat empty = %+v, %v", st, err)
		}
		o, err := c.s.Open(t.Context(), key)
		if err != nil {
			t.Fatalf("Open empty: %v", err)
		}
		if n, err := o.ReadAt(make([]byte, 10), 0); n != 0 || err != io.EOF {
			t.Fatalf("ReadAt on empty = %d, %v; want 0, EOF", n, err)
		}
		if b, err := io.ReadAll(o); err != nil || len(b) != 0 {
			t.Fatalf("ReadAll on empty = %d bytes, %v", len(b), err)
		}
		o.Close()
	}
}

func (c *suite) testRanges(t *testing.T) {
	key := c.key("ranges/obj")
	const size = 300_001
	b := data(3, size)
	c.put(t, key, b)
	o, err := c.s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer o.Close()

	// ReadAt.
	for _, tc := range []struct {
		off    int64
		n      int
		want   int
		eofOK  bool // io.EOF allowed with a full read (read up to the end)
		eofReq bool // fewer bytes than asked: io.EOF required
	}{
		{off: 0, n: 100, want: 100},
		{off: 12345, n: 4096, want: 4096},
		{off: 150_000, n: 1, want: 1},
		{off: size - 10, n: 10, want: 10, eofOK: true},
		{off: size - 10, n: 100, want: 10, eofReq: true},
		{off: 0, n: size + 5, want: size, eofReq: true},
		{off: size, n: 10, want: 0, eofReq: true},
		{off: size + 1000, n: 10, want: 0, eofReq: true},
	} {
		p := make([]byte, tc.n)
		n, err := o.ReadAt(p, tc.off)
		switch {
		case n != tc.want:
			t.Fatalf("ReadAt(%d bytes at %d) n = %d, want %d (err %v)", tc.n, tc.off, n, tc.want, err)
		case tc.eofReq && err != io.EOF:
			t.Fatalf("ReadAt(%d bytes at %d) err = %v, want io.EOF", tc.n, tc.off, err)
		case !tc.eofReq && err != nil && !(tc.eofOK && err == io.EOF):
			t.Fatalf("ReadAt(%d bytes at %d) err = %v", tc.n, tc.off, err)
		}
		if n > 0 && !bytes.Equal(p[:n], b[tc.off:tc.off+int64(n)]) {
			t.Fatalf("ReadAt(%d bytes at %d): wrong bytes", tc.n, tc.off)
		}
	}
	if _, err := o.ReadAt(make([]byte, 1), -1); err == nil {
		t.Fatalf("ReadAt at -1: no error")
	}

	// Concurrent ReadAt (io.ReaderAt allows parallel calls).
	var wg sync.WaitGroup
	var bad atomic.Int32
	for g := range 8 {
		wg.Go(func() {
			r := mrand.New(mrand.NewPCG(uint64(g), 1))
			for range 10 {
				off := r.Int64N(size)
				p := make([]byte, r.IntN(20_000)+1)
				n, err := o.ReadAt(p, off)
				if (err != nil && err != io.EOF) || !bytes.Equal(p[:n], b[off:off+int64(n)]) ||
					(n < len(p) && off+int64(n) != size) {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if bad.Load() > 0 {
		t.Fatalf("%d concurrent ReadAt calls returned wrong results", bad.Load())
	}

	// Seek and Read.
	seek := func(off int64, whence int, want int64) {
		t.Helper()
		got, err := o.Seek(off, whence)
		if err != nil || got != want {
			t.Fatalf("Seek(%d, %d) = %d, %v; want %d", off, whence, got, err, want)
		}
	}
	read := func(n int, from int64) {
		t.Helper()
		p := make([]byte, n)
		if _, err := io.ReadFull(o, p); err != nil {
			t.Fatalf("reading %d bytes at %d: %v", n, from, err)
		}
		if !bytes.Equal(p, b[from:from+int64(n)]) {
			t.Fatalf("reading %d bytes at %d: wrong bytes", n, from)
		}
	}
	seek(0, io.SeekEnd, size)
	seek(0, io.SeekStart, 0)
	read(1000, 0)
	seek(0, io.SeekCurrent, 1000)
	read(500, 1000) // sequential
	seek(10, io.SeekCurrent, 1510)
	read(90, 1510)
	seek(200_000, io.SeekStart, 200_000)
	read(50_000, 200_000)
	seek(5, io.SeekStart, 5) // backwards
	read(10, 5)
	seek(-100, io.SeekEnd, size-100)
	if rest, err := io.ReadAll(o); err != nil || !bytes.Equal(rest, b[size-100:]) {
		t.Fatalf("ReadAll of the last 100 bytes: %d bytes, %v", len(rest), err)
	}
	if n, err := o.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("Read at end = %d, %v; want 0, EOF", n, err)
	}
	seek(size+50, io.SeekStart, size+50)
	if n, err := o.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("Read past end = %d, %v; want 0, EOF", n, err)
	}
	if _, err := o.Seek(-1, io.SeekStart); err == nil {
		t.Fatalf("Seek(-1, SeekStart): no error")
	}

	// A SectionReader (as used for sub-ranges) over the object.
	sec, err := io.ReadAll(io.NewSectionReader(o, 70_000, 30_000))
	if err != nil || !bytes.Equal(sec, b[70_000:100_000]) {
		t.Fatalf("SectionReader: %d bytes, %v", len(sec), err)
	}
}

func (c *suite) testServeContent(t *testing.T) {
	key := c.key("serve/video.mp4")
	const size = 123_457
	b := data(4, size)
	info := c.put(t, key, b)
	serve := func(h http.Header) *httptest.ResponseRecorder {
		t.Helper()
		o, err := c.s.Open(t.Context(), key)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer o.Close()
		req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/v", nil)
		maps(req.Header, h)
		rec := httptest.NewRecorder()
		rec.Header().Set("ETag", `"`+o.Info().ETag+`"`)
		rec.Header().Set("Content-Type", "video/mp4")
		http.ServeContent(rec, req, "", o.Info().ModTime, o)
		return rec
	}

	rec := serve(nil)
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), b) {
		t.Fatalf("full GET: status %d, %d bytes", rec.Code, rec.Body.Len())
	}

	rec = serve(http.Header{"Range": {"bytes=1000-1999"}})
	if rec.Code != http.StatusPartialContent || !bytes.Equal(rec.Body.Bytes(), b[1000:2000]) {
		t.Fatalf("Range 1000-1999: status %d, %d bytes", rec.Code, rec.Body.Len())
	}
	if cr := rec.Header().Get("Content-Range"); cr != fmt.Sprintf("bytes 1000-1999/%d", size) {
		t.Fatalf("Content-Range = %q", cr)
	}

	rec = serve(http.Header{"Range": {"bytes=-500"}})
	if rec.Code != http.StatusPartialContent || !bytes.Equal(rec.Body.Bytes(), b[size-500:]) {
		t.Fatalf("Range -500: status %d, %d bytes", rec.Code, rec.Body.Len())
	}

	rec = serve(http.Header{"Range": {"bytes=100000-"}})
	if rec.Code != http.StatusPartialContent || !bytes.Equal(rec.Body.Bytes(), b[100000:]) {
		t.Fatalf("Range 100000-: status %d, %d bytes", rec.Code, rec.Body.Len())
	}

	rec = serve(http.Header{"Range": {"bytes=0-9,50000-50099,-7"}})
	if rec.Code != http.StatusPartialContent {
		t.Fatalf("multi-range: status %d", rec.Code)
	}
	_, params, err := mime.ParseMediaType(rec.Header().Get("Content-Type"))
	if err != nil {
		t.Fatalf("multi-range Content-Type: %v", err)
	}
	mr := multipart.NewReader(rec.Body, params["boundary"])
	for _, want := range [][]byte{b[0:10], b[50000:50100], b[size-7:]} {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("multi-range part: %v", err)
		}
		got, err := io.ReadAll(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("multi-range part: %d bytes, %v; want %d bytes", len(got), err, len(want))
		}
	}

	rec = serve(http.Header{"Range": {fmt.Sprintf("bytes=%d-", size+10)}})
	if rec.Code != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("unsatisfiable range: status %d", rec.Code)
	}

	rec = serve(http.Header{"If-None-Match": {`"` + info.ETag + `"`}})
	if rec.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match with the ETag: status %d", rec.Code)
	}
}

func maps(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

func (c *suite) testOverwrite(t *testing.T) {
	key := c.key("overwrite/obj")
	a, b := data(5, 10_000), data(6, 20_000)
	ia := c.put(t, key, a)

	old, err := c.s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer old.Close()

	ib := c.put(t, key, b)
	if ib.Size != int64(len(b)) || ib.ETag == ia.ETag {
		t.Fatalf("after overwrite Info = %+v (first put %+v); want new size and ETag", ib, ia)
	}
	if st, err := c.s.Stat(t.Context(), key); err != nil || st.Size != int64(len(b)) || st.ETag != ib.ETag {
		t.Fatalf("Stat after overwrite = %+v, %v; want %+v", st, err, ib)
	}
	c.wantContent(t, key, b)

	// An object opened before the overwrite reads the old bytes or fails;
	// it never mixes versions.
	p := make([]byte, len(a))
	n, err := old.ReadAt(p, 0)
	if err == nil && (n != len(a) || !bytes.Equal(p, a)) {
		t.Fatalf("object opened before overwrite returned %d bytes that are not the old content", n)
	}
}

func (c *suite) testDelete(t *testing.T) {
	key := c.key("delete/a/b/obj")
	c.put(t, key, data(7, 1000))
	sibling := c.key("delete/a/other")
	c.put(t, sibling, data(8, 10))

	if err := c.s.Delete(t.Context(), key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	c.wantNotFound(t, key)
	if err := c.s.Delete(t.Context(), key); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if err := c.s.Delete(t.Context(), c.key("delete/never/existed")); err != nil {
		t.Fatalf("Delete of a never-existing key: %v", err)
	}
	// Deleting a prefix of other keys deletes nothing.
	if err := c.s.Delete(t.Context(), c.key("delete/a")); err != nil {
		t.Fatalf("Delete of a prefix: %v", err)
	}
	c.wantContent(t, sibling, data(8, 10))
	// The key can be used again.
	c.put(t, key, data(9, 50))
	c.wantContent(t, key, data(9, 50))
}

func (c *suite) testNotFound(t *testing.T) {
	c.wantNotFound(t, c.key("nf/missing"))
	c.wantNotFound(t, c.key("nf/deep/er/missing.mp4"))
	parent := c.key("nf/file")
	c.put(t, parent, []byte("x"))
	c.wantNotFound(t, parent+"/child") // a "directory" that is an object
	c.wantNotFound(t, c.key("nf"))     // a prefix of a key
}

// BadKeys lists keys every store must reject.
var BadKeys = []string{
	"", "/", "/abs", "trailing/", "double//slash", "..", ".", "../up", "a/../b",
	"a/./b", "a/..", ".hidden", "dir/.tmp", "back\\slash", "sp ace", "nul\x00byte",
	"new\nline", "percent%2F", "colon:", "q?", "star*", "ünïcode", "tab\t",
	strings.Repeat("a", blob.MaxKeyLen+1), strings.Repeat("b", 256),
}

// GoodKeys lists keys every store must accept.
var GoodKeys = []string{
	"a", "videos/0f8fad5b-d9cb-469f-a165-70867728950e/video.mp4",
	"UPPER_lower-0.9", "thumbs/x/poster.v2.jpg", "a/b/c/d/e/f/g",
}

func (c *suite) testBadKeys(t *testing.T) {
	ctx := t.Context()
	for _, k := range BadKeys {
		if err := blob.ValidateKey(k); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) = %v; want ErrInvalidKey", k, err)
		}
		if _, err := c.s.Put(ctx, k, strings.NewReader("x"), 1, ""); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v; want ErrInvalidKey", k, err)
		}
		if _, err := c.s.Stat(ctx, k); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Stat(%q) = %v; want ErrInvalidKey", k, err)
		}
		if o, err := c.s.Open(ctx, k); !errors.Is(err, blob.ErrInvalidKey) {
			if err == nil {
				o.Close()
			}
			t.Errorf("Open(%q) = %v; want ErrInvalidKey", k, err)
		}
		if err := c.s.Delete(ctx, k); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v; want ErrInvalidKey", k, err)
		}
	}
	for _, k := range GoodKeys {
		if err := blob.ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q) = %v", k, err)
		}
	}
	// Keys that are valid once prefixed work end to end.
	for i, k := range GoodKeys {
		key := c.key(fmt.Sprintf("good/%d/%s", i, k))
		c.put(t, key, []byte{byte(i)})
		c.wantContent(t, key, []byte{byte(i)})
	}
}

var errBoom = errors.New("blobtest: source failed")

// failingReader returns n bytes of data and then errBoom.
type failingReader struct {
	r io.Reader
	n int64
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errBoom
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

func (c *suite) testFailingReader(t *testing.T) {
	failAts := []int64{0, 100_000, 12 << 20}
	if c.opts.LargeSize < 12<<20 {
		failAts = failAts[:2]
	}
	for _, failAt := range failAts {
		for _, declared := range []int64{failAt + 1000, -1} {
			key := c.key(fmt.Sprintf("failing/at%d/declared%d", failAt, declared))
			r := &failingReader{r: stream(10, failAt+1000), n: failAt}
			_, err := c.s.Put(t.Context(), key, r, declared, "")
			if !errors.Is(err, errBoom) {
				t.Fatalf("Put with a reader failing after %d bytes (size %d) = %v; want the reader's error", failAt, declared, err)
			}
			c.wantNotFound(t, key)
		}
	}

	// A failed overwrite keeps the previous object.
	key := c.key("failing/existing")
	old := data(11, 5000)
	oi := c.put(t, key, old)
	if _, err := c.s.Put(t.Context(), key, &failingReader{r: stream(12, 1<<20), n: 70_000}, 1<<20, ""); !errors.Is(err, errBoom) {
		t.Fatalf("failing overwrite = %v; want the reader's error", err)
	}
	if st, err := c.s.Stat(t.Context(), key); err != nil || st.ETag != oi.ETag || st.Size != oi.Size {
		t.Fatalf("after a failed overwrite Stat = %+v, %v; want the old %+v", st, err, oi)
	}
	c.wantContent(t, key, old)
}

func (c *suite) testSizeMismatch(t *testing.T) {
	big := int64(6 << 20)
	for _, tc := range []struct{ declared, actual int64 }{
		{1000, 500}, {500, 1000}, {0, 1}, {1000, 0}, {1, 0}, {1000, 1001}, {1001, 1000},
		{big, big - 1}, {big, big + 1},
	} {
		key := c.key(fmt.Sprintf("mismatch/%d-%d", tc.declared, tc.actual))
		_, err := c.s.Put(t.Context(), key, stream(13, tc.actual), tc.declared, "")
		if !errors.Is(err, blob.ErrSizeMismatch) {
			t.Fatalf("Put declaring %d bytes, giving %d = %v; want ErrSizeMismatch", tc.declared, tc.actual, err)
		}
		c.wantNotFound(t, key)
	}

	key := c.key("mismatch/existing")
	old := data(14, 3000)
	oi := c.put(t, key, old)
	if _, err := c.s.Put(t.Context(), key, stream(15, 4000), 3999, ""); !errors.Is(err, blob.ErrSizeMismatch) {
		t.Fatalf("mismatched overwrite = %v; want ErrSizeMismatch", err)
	}
	if st, err := c.s.Stat(t.Context(), key); err != nil || st.ETag != oi.ETag {
		t.Fatalf("after a mismatched overwrite Stat = %+v, %v; want the old %+v", st, err, oi)
	}
	c.wantContent(t, key, old)
}

// cancelingReader cancels its context after n bytes.
type cancelingReader struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= int64(n)
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func (c *suite) testCanceled(t *testing.T) {
	for _, declared := range []int64{1 << 20, -1} {
		key := c.key(fmt.Sprintf("canceled/%d", declared))
		ctx, cancel := context.WithCancel(t.Context())
		r := &cancelingReader{r: stream(16, 1<<20), n: 200_000, cancel: cancel}
		_, err := c.s.Put(ctx, key, r, declared, "")
		cancel()
		if err == nil {
			t.Fatalf("Put whose context was canceled midway succeeded")
		}
		if !errors.Is(err, context.Canceled) {
			t.Logf("Put canceled midway: %v (not wrapping context.Canceled)", err)
		}
		c.wantNotFound(t, key)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.s.Put(ctx, c.key("canceled/before"), strings.NewReader("x"), 1, ""); err == nil {
		t.Fatalf("Put with a canceled context succeeded")
	}
	c.wantNotFound(t, c.key("canceled/before"))
}

// heapBytes returns the bytes of heap objects, live and not yet swept.
func heapBytes() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// peakHeapGrowth runs f and returns how far the heap rose above its level
// before f, sampled every millisecond.
func peakHeapGrowth(f func()) int64 {
	runtime.GC()
	base := heapBytes()
	var peak atomic.Int64
	peak.Store(base)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if h := heapBytes(); h > peak.Load() {
					peak.Store(h)
				}
			}
		}
	}()
	f()
	close(stop)
	<-done
	if h := heapBytes(); h > peak.Load() {
		peak.Store(h)
	}
	return peak.Load() - base
}

func (c *suite) testLargeStream(t *testing.T) {
	for _, tc := range []struct {
		size, declared int64
	}{
		{c.opts.LargeSize, c.opts.LargeSize},
		{c.opts.LargeSize / 2, -1},
	} {
		key := c.key(fmt.Sprintf("large/%d", tc.declared))
		h := sha256.New()
		src := io.TeeReader(stream(17, tc.size), h)
		var info blob.Info
		var err error
		start := time.Now()
		growth := peakHeapGrowth(func() {
			info, err = c.s.Put(t.Context(), key, src, tc.declared, "video/mp4")
		})
		if err != nil {
			t.Fatalf("Put %d MiB (size %d): %v", tc.size>>20, tc.declared, err)
		}
		t.Logf("Put %d MiB (size %d): %v, heap grew %.1f MiB", tc.size>>20, tc.declared,
			time.Since(start).Round(time.Millisecond), float64(growth)/(1<<20))
		if info.Size != tc.size {
			t.Fatalf("Put Info.Size = %d, want %d", info.Size, tc.size)
		}
		if growth > c.opts.MaxHeapGrowth {
			t.Errorf("Put of %d MiB grew the heap by %.1f MiB; limit %.1f MiB (is it buffering?)",
				tc.size>>20, float64(growth)/(1<<20), float64(c.opts.MaxHeapGrowth)/(1<<20))
		}
		want := h.Sum(nil)

		o, err := c.s.Open(t.Context(), key)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		h2 := sha256.New()
		var n int64
		start = time.Now()
		growth = peakHeapGrowth(func() {
			n, err = io.Copy(h2, o)
		})
		o.Close()
		if err != nil || n != tc.size {
			t.Fatalf("reading back: %d bytes, %v", n, err)
		}
		t.Logf("read %d MiB: %v, heap grew %.1f MiB", n>>20, time.Since(start).Round(time.Millisecond), float64(growth)/(1<<20))
		if got := h2.Sum(nil); !bytes.Equal(got, want) {
			t.Fatalf("sha256 of the read-back object %x, put %x", got, want)
		}
		if growth > c.opts.MaxHeapGrowth {
			t.Errorf("reading %d MiB grew the heap by %.1f MiB", n>>20, float64(growth)/(1<<20))
		}
		if err := c.s.Delete(t.Context(), key); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
}

func (c *suite) testConcurrentPuts(t *testing.T) {
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key := c.key(fmt.Sprintf("concurrent/%d/video.mp4", i))
			size := int64(200_000 + i*1000)
			_, errs[i] = c.s.Put(t.Context(), key, stream(uint64(100+i), size), size, "video/mp4")
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Put %d: %v", i, err)
		}
	}
	for i := range n {
		c.wantContent(t, c.key(fmt.Sprintf("concurrent/%d/video.mp4", i)), data(uint64(100+i), int64(200_000+i*1000)))
	}
}

// testPutFile stores local files through blob.PutFile (the store's Import
// when it is an Importer): the content arrives, a file of another size
// than declared or a missing file stores nothing and leaves the previous
// object as it was, and so does a cancelled context.
func (c *suite) testPutFile(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	_, importer := c.s.(blob.Importer)
	t.Logf("store is an Importer: %v", importer)

	key := c.key("file/a")
	want := data(21, 300<<10)
	info, err := blob.PutFile(ctx, c.s, key, file("a", want), int64(len(want)), "video/mp4")
	if err != nil {
		t.Fatalf("PutFile: %v", err)
	}
	if info.Key != key || info.Size != int64(len(want)) || info.ETag == "" {
		t.Fatalf("PutFile info %+v", info)
	}
	c.wantContent(t, key, want)
	if st, err := c.s.Stat(ctx, key); err != nil || st.Size != info.Size || st.ETag != info.ETag {
		t.Fatalf("Stat after PutFile = %+v, %v; want %+v", st, err, info)
	}

	// Unknown size, and an overwrite.
	again := data(22, 1000)
	if info, err := blob.PutFile(ctx, c.s, key, file("b", again), -1, ""); err != nil || info.Size != 1000 {
		t.Fatalf("PutFile of unknown size over an object = %+v, %v", info, err)
	}
	c.wantContent(t, key, again)

	// Failures leave the previous object.
	for name, tc := range map[string]struct {
		path string
		size int64
		is   error
	}{
		"shorter":  {file("short", data(23, 999)), 1000, blob.ErrSizeMismatch},
		"longer":   {file("long", data(24, 1001)), 1000, blob.ErrSizeMismatch},
		"missing":  {filepath.Join(dir, "none"), 1000, os.ErrNotExist},
		"dir":      {dir, -1, nil},
		"bad key":  {file("badkey", data(25, 10)), 10, blob.ErrInvalidKey},
		"canceled": {file("canceled", data(26, 10)), 10, context.Canceled},
	} {
		k, cctx := key, ctx
		switch name {
		case "bad key":
			k = c.key("file/../x")
		case "canceled":
			cc, cancel := context.WithCancel(ctx)
			cancel()
			cctx = cc
		}
		_, err := blob.PutFile(cctx, c.s, k, tc.path, tc.size, "")
		if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Fatalf("PutFile %s = %v; want an error (%v)", name, err, tc.is)
		}
		c.wantContent(t, key, again)
	}
	fresh := c.key("file/fresh")
	if _, err := blob.PutFile(ctx, c.s, fresh, file("fresh", data(27, 10)), 11, ""); !errors.Is(err, blob.ErrSizeMismatch) {
		t.Fatalf("PutFile of a mismatched size = %v", err)
	}
	c.wantNotFound(t, fresh)
}
