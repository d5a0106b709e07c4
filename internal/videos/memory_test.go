package videos_test

import (
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
	"github.com/reel-video/reel/internal/videos"
)

// zeros is a deterministic reader of n zero bytes.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > z.n {
		p = p[:z.n]
	}
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}

// paddedUpload is a multipart body streamed from a generator: a real small
// MP4 followed by zeros up to size bytes of file (ffprobe reads the MP4's
// boxes and ignores the padding). It returns the body, its exact length
// and content type.
func paddedUpload(t testing.TB, clip []byte, size int64, title string) (io.Reader, int64, string) {
	t.Helper()
	var head, tail strings.Builder
	mw := multipart.NewWriter(&head)
	_ = mw.WriteField("title", title)
	if _, err := mw.CreateFormFile("video", "big.mp4"); err != nil {
		t.Fatal(err)
	}
	tail.WriteString("\r\n--" + mw.Boundary() + "--\r\n")
	body := io.MultiReader(strings.NewReader(head.String()), strings.NewReader(string(clip)),
		&zeros{n: size - int64(len(clip))}, strings.NewReader(tail.String()))
	return body, int64(head.Len()) + size + int64(tail.Len()), mw.FormDataContentType()
}

func postStream(t testing.TB, e *env, u user, body io.Reader, length int64, ct string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", e.srv.URL+"/api/v1/videos", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = length
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+u.token)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// heapPeak samples the live heap until stop is closed and returns the
// highest value seen.
func heapPeak(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// Uploading 1 GiB keeps the heap flat: the body is streamed to a spool
// file and from there into the blob store, never held in memory. Client
// and server share this process, so the bound covers both.
func TestUploadMemoryStaysFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 1 GiB")
	}
	clip := testVideo(t, 1, 64, 48)
	db := sqldbtest.OpenURL(t, sqldbtest.SQLiteURL(t), videos.Migrations(), videos.MigrationTable)
	e := newEnv(t, db, func(c *envConfig) { c.maxUpload = 2 << 30 })
	ann := e.user("user")
	const size = 1 << 30
	body, length, ct := paddedUpload(t, clip, size, "a gigabyte")

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := make(chan struct{})
	peakc := heapPeak(stop)
	res := postStream(t, e, ann, body, length, ct)
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	close(stop)
	peak := <-peakc
	if res.StatusCode != 201 {
		t.Fatalf("upload: %d %s", res.StatusCode, raw)
	}
	growth := int64(peak) - int64(before.HeapAlloc)
	t.Logf("heap before %d MiB, peak %d MiB, growth %d MiB for a 1 GiB upload",
		before.HeapAlloc>>20, peak>>20, growth>>20)
	if growth > 32<<20 {
		t.Fatalf("heap grew by %d MiB while uploading 1 GiB", growth>>20)
	}
	info, err := e.blobs.Stat(t.Context(), "videos/"+jsonField(raw, "id")+"/video.mp4")
	if err != nil || info.Size != size {
		t.Fatalf("stored %d bytes, %v", info.Size, err)
	}
}

func jsonField(raw []byte, key string) string {
	s := string(raw)
	i := strings.Index(s, `"`+key+`":"`)
	if i < 0 {
		return ""
	}
	s = s[i+len(key)+4:]
	return s[:strings.IndexByte(s, '"')]
}

// ---------------------------------------------------------------------
// Benchmarks (docs/benchmarks.md, "The component benchmarks").

func benchEnv(b *testing.B, opts ...func(*envConfig)) *env {
	b.Helper()
	db := sqldbtest.OpenURL(b, sqldbtest.SQLiteURL(b), videos.Migrations(), videos.MigrationTable)
	return newEnv(b, db, append([]func(*envConfig){func(c *envConfig) { c.maxUpload = 2 << 30 }}, opts...)...)
}

// BenchmarkUpload measures a whole multipart upload of 256 MiB over a
// loopback socket, as its client waits for it: admission, spooling, the
// probe, the copy into the disk blob store (fsynced) and the commit. The
// poster is cut after the answer (posters.go) and is not measured here.
func BenchmarkUpload(b *testing.B) {
	clip := testVideo(b, 1, 64, 48)
	e := benchEnv(b)
	ann := e.user("user")
	const size = 256 << 20
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		body, length, ct := paddedUpload(b, clip, size, fmt.Sprint("bench ", i))
		res := postStream(b, e, ann, body, length, ct)
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 201 {
			b.Fatalf("upload: %d", res.StatusCode)
		}
	}
}

// BenchmarkRange measures serving ranges of a 256 MiB video from the disk
// store over loopback (sendfile), one request per range, from 4 clients:
// 1 MiB ranges for throughput, 64 KiB ranges for the per-request cost
// (token check, row lookup, allowance, open).
func BenchmarkRange(b *testing.B) {
	clip := testVideo(b, 1, 64, 48)
	e := benchEnv(b, func(c *envConfig) { c.chunk = 8 << 20 })
	ann := e.user("user")
	const size = 256 << 20
	body, length, ct := paddedUpload(b, clip, size, "ranges")
	res := postStream(b, e, ann, body, length, ct)
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 201 {
		b.Fatalf("upload: %d %s", res.StatusCode, raw)
	}
	url, _ := e.play(ann, jsonField(raw, "id"))
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	for _, span := range []int64{1 << 20, 64 << 10} {
		b.Run(fmt.Sprintf("%dKiB", span>>10), func(b *testing.B) {
			b.SetBytes(span)
			var n atomic.Int64
			b.SetParallelism(2) // 2 × GOMAXPROCS(2) = 4 clients
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					off := (n.Add(1) * 7919 * span) % (size - span)
					req, _ := http.NewRequest("GET", url, nil)
					req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+span-1))
					res, err := hc.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					got, _ := io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 206 || got != span {
						b.Errorf("range: %d, %d bytes", res.StatusCode, got)
						return
					}
				}
			})
		})
	}
}
