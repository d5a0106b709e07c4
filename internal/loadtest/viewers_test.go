package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestViewersConfig(t *testing.T) {
	c, err := ViewersConfig{BaseURL: "http://127.0.0.1:1/", VideoID: "v1", Start: 5}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL != "http://127.0.0.1:1" || c.Max != 5 || c.Accounts != 5 || c.Short != 360 || c.StepDuration != DefaultStepDuration ||
		c.TargetP99 != DefaultTargetP99 || c.Timeout <= 0 || c.steps() != 1 {
		t.Fatalf("%+v", c)
	}
	c, err = ViewersConfig{BaseURL: "http://h", Master: "/hls/master.m3u8", Start: 500, Step: 500, Max: 5200}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Accounts != DefaultViewerAccounts || c.steps() != 11 || c.viewersAt(0) != 500 || c.viewersAt(9) != 5000 || c.viewersAt(10) != 5200 {
		t.Fatalf("%+v: %d steps", c, c.steps())
	}
	for name, bad := range map[string]ViewersConfig{
		"neither video nor master": {Start: 1},
		"both":                     {VideoID: "v", Master: "/m.m3u8", Start: 1},
		"master elsewhere":         {Master: "http://other/m.m3u8", Start: 1},
		"master not a path":        {Master: "m.m3u8", Start: 1},
		"video id with a slash":    {VideoID: "a/b", Start: 1},
		"no viewers":               {VideoID: "v"},
		"too many viewers":         {VideoID: "v", Start: MaxUsers + 1},
		"max below start":          {VideoID: "v", Start: 10, Step: 1, Max: 5},
		"no step to max":           {VideoID: "v", Start: 10, Max: 20},
		"steps past the cap":       {VideoID: "v", Start: 1, Step: 1, Max: 1000, StepDuration: time.Minute},
		"short step":               {VideoID: "v", Start: 1, StepDuration: time.Millisecond},
		"bad pid":                  {VideoID: "v", Start: 1, ServerPIDs: []int{0}},
		"bad rung":                 {VideoID: "v", Start: 1, Short: -1},
	} {
		bad.BaseURL = "http://127.0.0.1:1"
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// rangeServer serves content by ranges, counting connections and
// requests; misbehave, when set, may answer a request instead.
func rangeServer(t *testing.T, content []byte, misbehave func(n int64, w http.ResponseWriter) bool) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns, reqs atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if misbehave != nil && misbehave(reqs.Add(1), w) {
			return
		}
		http.ServeContent(w, r, "a.mp4", time.Time{}, bytes.NewReader(content))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestHLSConnKeepsItsConnection(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789"), 1000)
	srv, conns := rangeServer(t, content, nil)
	base, _ := url.Parse(srv.URL)
	var dialed atomic.Int64
	h := newHLSConn(base, 10*time.Second, false)
	h.dialed = &dialed
	defer h.close()
	target := base.JoinPath("a.mp4")
	for i := range 3 {
		p := hlsPart{Offset: int64(i) * 100, Length: 100}
		f, err := h.get(t.Context(), target, p.rangeHeader(), true)
		if err != nil {
			t.Fatal(err)
		}
		if f.status != http.StatusPartialContent || !bytes.Equal(f.body, content[p.Offset:p.Offset+100]) || f.ttfb <= 0 || f.total < f.ttfb {
			t.Fatalf("request %d: %+v", i, f)
		}
	}
	f, err := h.get(t.Context(), target, "", false)
	if err != nil || f.status != http.StatusOK || f.bytes != int64(len(content)) || f.body != nil {
		t.Fatalf("whole file: %+v %v", f, err)
	}
	if conns.Load() != 1 || dialed.Load() != 1 {
		t.Fatalf("%d connections, %d dialed: want one kept alive", conns.Load(), dialed.Load())
	}
}

func TestHLSConnReconnects(t *testing.T) {
	content := []byte(strings.Repeat("x", 500))
	// The second request's connection is dropped before any answer (a
	// server closing an idle connection as the request arrives): it goes
	// again on a new connection (the server's third). The fourth gets a
	// short body: an error.
	srv, conns := rangeServer(t, content, func(n int64, w http.ResponseWriter) bool {
		switch n {
		case 2:
			c, _, _ := http.NewResponseController(w).Hijack()
			_ = c.Close()
			return true
		case 5:
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(http.StatusPartialContent)
			_, _ = w.Write([]byte("short"))
			return true
		}
		return false
	})
	base, _ := url.Parse(srv.URL)
	h := newHLSConn(base, 10*time.Second, false)
	defer h.close()
	target := base.JoinPath("a.mp4")
	for i := 1; i <= 3; i++ {
		if f, err := h.get(t.Context(), target, "bytes=0-99", false); err != nil || f.bytes != 100 {
			t.Fatalf("request %d: %+v %v", i, f, err)
		}
	}
	if _, err := h.get(t.Context(), target, "bytes=0-99", false); err == nil || errorKind(err) != "reset" {
		t.Fatalf("short body: %v (%s)", err, errorKind(err))
	}
	if f, err := h.get(t.Context(), target, "bytes=0-99", false); err != nil || f.bytes != 100 {
		t.Fatalf("after the short body: %+v %v", f, err)
	}
	if conns.Load() != 3 {
		t.Fatalf("%d connections, want 3 (the first, after the drop, after the short body)", conns.Load())
	}
	// A cancelled context stops a request at once.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := h.get(ctx, target, "", false); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled request: %v", err)
	}
}

// hlsFiles serves a master playlist, two rungs' media playlists and their
// "fMP4" files (bytes: the tool does not decode them) as a plain file
// server does.
func hlsFiles(t *testing.T) *httptest.Server {
	t.Helper()
	files := map[string][]byte{
		"/v/master.m3u8": []byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360\n360.m3u8\n" +
			"#EXT-X-STREAM-INF:BANDWIDTH=500000,RESOLUTION=426x240\n240.m3u8\n"),
		"/v/240.m3u8": []byte("#EXTM3U\n#EXTINF:4,\n240.mp4\n"),
		"/v/360.mp4":  bytes.Repeat([]byte{7}, 4000),
		"/v/240.mp4":  bytes.Repeat([]byte{2}, 100),
	}
	var pl strings.Builder
	pl.WriteString("#EXTM3U\n#EXT-X-MAP:URI=\"360.mp4\",BYTERANGE=\"400@0\"\n")
	for i := range 4 {
		fmt.Fprintf(&pl, "#EXTINF:4.000,\n#EXT-X-BYTERANGE:900@%d\n360.mp4\n", 400+900*i)
	}
	files["/v/360.m3u8"] = []byte(pl.String())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, r.URL.Path, time.Time{}, bytes.NewReader(b))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestViewersAgainstFiles(t *testing.T) {
	srv := hlsFiles(t)
	res, err := RunViewers(t.Context(), ViewersConfig{BaseURL: srv.URL, Master: "/v/master.m3u8", Start: 2, Step: 3, Max: 5,
		StepDuration: time.Second, Interval: 50 * time.Millisecond, TargetP99: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != "files" || res.Rung != (ViewersRung{Playlist: "360.m3u8", Width: 640, Height: 360, Bandwidth: 900000, Segments: 4, SegmentS: 4, Bytes: 900}) {
		t.Fatalf("mode %s, rung %+v", res.Mode, res.Rung)
	}
	if len(res.Steps) != 2 || res.StopReason != "max" || res.Best != 5 {
		t.Fatalf("%d steps, stopped by %s, best %d", len(res.Steps), res.StopReason, res.Best)
	}
	for i, s := range res.Steps {
		// Each viewer has a connection of its own.
		if want := []uint64{2, 3}[i]; s.Dials != want {
			t.Errorf("step %d: %d connections opened, want %d", i, s.Dials, want)
		}
		if s.Errors != 0 || s.Segments == 0 || !s.Pass || s.MiBps <= 0 || s.GeneratorCPU < 0 {
			t.Errorf("step %d: %+v", i, s)
		}
		for _, r := range s.Routes {
			if r.Name == RouteHLSSegment && r.Bytes != int64(r.Requests)*900 {
				t.Errorf("step %d: %d bytes in %d segments", i, r.Bytes, r.Requests)
			}
		}
	}
	if !strings.Contains(strings.Join(res.Notes, "\n"), "no server process") {
		t.Errorf("notes %q", res.Notes)
	}

	// A step that misses the target ends the run: here the first.
	res, err = RunViewers(t.Context(), ViewersConfig{BaseURL: srv.URL, Master: "/v/master.m3u8", Start: 1, Step: 1, Max: 3,
		StepDuration: time.Second, Interval: 50 * time.Millisecond, TargetP99: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Steps) != 1 || res.StopReason != "failed" || res.Best != 0 || res.Steps[0].Pass {
		t.Fatalf("%d steps, stopped by %s, best %d", len(res.Steps), res.StopReason, res.Best)
	}

	// The 240p rung asked for, a whole file per segment.
	res, err = RunViewers(t.Context(), ViewersConfig{BaseURL: srv.URL, Master: "/v/master.m3u8", Short: 240, Start: 1,
		StepDuration: time.Second, Interval: 50 * time.Millisecond, TargetP99: time.Minute})
	if err != nil || res.Rung.Height != 240 || res.Steps[0].Errors != 0 || res.Steps[0].Segments == 0 {
		t.Fatalf("%+v %v", res, err)
	}

	// Nothing to play: the run fails before any viewer starts.
	if _, err := RunViewers(t.Context(), ViewersConfig{BaseURL: srv.URL, Master: "/v/none.m3u8", Start: 1, StepDuration: time.Second}); err == nil ||
		!strings.Contains(err.Error(), "does not play") {
		t.Fatalf("missing master: %v", err)
	}
}
