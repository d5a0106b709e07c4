//go:build unix

package media

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/media/mediatest"
	"github.com/reel-video/reel/internal/platform/browsertest"
)

// seekPage plays the rendition in a plain <video>, seeks near its end
// once its metadata is in, and posts what it saw.
const seekPage = `<!doctype html>
<video id="v" muted preload="metadata" src="/r.mp4"></video>
<script>
const v = document.getElementById('v'), r = {};
const send = () => fetch('/result', {method: 'POST', body: JSON.stringify(r)});
v.addEventListener('loadedmetadata', () => { r.duration = v.duration; r.seekable = v.seekable.length ? v.seekable.end(0) : 0; v.currentTime = %s; });
v.addEventListener('seeked', () => {
  r.seekedAt = v.currentTime; r.readyState = v.readyState; r.width = v.videoWidth; r.height = v.videoHeight;
  r.buffered = []; for (let i = 0; i < v.buffered.length; i++) r.buffered.push([v.buffered.start(i), v.buffered.end(i)]);
  send();
});
v.addEventListener('error', () => { r.error = 'media error ' + (v.error ? v.error.code : '?'); send(); });
</script>`

// TestPlainVideoSeeksInChromium plays a rendition file in Chromium's plain
// <video src> and seeks near its end: the seek lands where asked, showing
// a frame of the rendition, and Chromium fetched the file by ranges
// rather than whole up to the point sought (the global sidx tells it
// where each fragment is).
func TestPlainVideoSeeksInChromium(t *testing.T) {
	chromium := findChromium(t)
	tools := realTools(t)
	dir := t.TempDir()
	// 30 s, with noise that compresses badly: a file large enough that
	// Chromium does not fetch it whole for its metadata.
	path := clip(t, dir, "a.mkv", "-f", "lavfi", "-i", "testsrc2=size=426x240:rate=25:duration=30,noise=alls=30:allf=t",
		"-c:v", "mpeg4", "-q:v", "2")
	src, err := tools.Analyze(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	rung := Ladder(src)[0]
	rung.CRF, rung.MaxRate, rung.BufSize = 10, 8_000_000, 16_000_000
	if err := tools.Encode(context.Background(), src, []Rung{rung}, dir, nil); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, rung.File())
	ix, err := IndexFile(file)
	if err != nil {
		t.Fatal(err)
	}
	const seekTo = 26.5

	var (
		mu     sync.Mutex
		ranges []string
		served int64
		result = make(chan map[string]any, 1)
	)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, seekPage, strconv.FormatFloat(seekTo, 'f', -1, 64))
	})
	mux.HandleFunc("GET /r.mp4", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ranges = append(ranges, r.Header.Get("Range"))
		mu.Unlock()
		cw := &countingWriter{ResponseWriter: w}
		http.ServeFile(cw, r, file)
		mu.Lock()
		served += cw.n
		mu.Unlock()
	})
	mux.HandleFunc("POST /result", func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err == nil {
			select {
			case result <- m:
			default:
			}
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
		"--no-first-run", "--user-data-dir="+filepath.Join(dir, "profile"), "--autoplay-policy=no-user-gesture-required", srv.URL+"/")
	killProcessGroupOnCancel(cmd, false)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()

	var r map[string]any
	select {
	case r = <-result:
	case <-time.After(90 * time.Second): // a guard against a browser that never answers
		t.Fatalf("Chromium reported nothing; it fetched %v", ranges)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("Chromium saw %v; fetched %v (%d of %d bytes)", r, ranges, served, ix.Size)
	if r["error"] != nil {
		t.Fatalf("Chromium: %v", r["error"])
	}
	num := func(k string) float64 { f, _ := r[k].(float64); return f }
	if d := num("duration"); !near(d, ix.Duration, 0.1) {
		t.Errorf("duration %v, want %v", d, ix.Duration)
	}
	if s := num("seekedAt"); !near(s, seekTo, 0.05) {
		t.Errorf("seeked to %v, want %v", s, seekTo)
	}
	// HAVE_CURRENT_DATA (2) or more: the frame at the new position is
	// decoded.
	if num("readyState") < 2 || num("width") != float64(rung.Width) || num("height") != float64(rung.Height) {
		t.Errorf("after the seek: ready state %v, %vx%v; want 2 or more, %dx%d",
			num("readyState"), num("width"), num("height"), rung.Width, rung.Height)
	}
	jumped := false
	for _, h := range ranges {
		var from int64
		if _, err := fmt.Sscanf(h, "bytes=%d-", &from); err == nil && from > ix.Size/2 {
			jumped = true
		}
	}
	if !jumped || served >= ix.Size {
		t.Errorf("Chromium fetched %v, %d of %d bytes: want a range request into the second half and less than the whole file", ranges, served, ix.Size)
	}
}

// countingWriter counts the body bytes written.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// ReadFrom hides the connection's sendfile so that every byte is counted.
func (w *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(struct{ io.Writer }{w}, r)
}

// findChromium returns the path of Chromium or Chrome (browsertest's rule:
// skipped loudly without one, failed in CI).
func findChromium(t *testing.T) string {
	t.Helper()
	mediatest.Tools(t)
	return browsertest.Path(t)
}
