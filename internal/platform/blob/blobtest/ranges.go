package blobtest

import (
	"bytes"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

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
