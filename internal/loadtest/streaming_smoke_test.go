package loadtest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/loadtest"
	"github.com/reel-video/reel/internal/media/mediatest"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

// The streaming scenarios at a tiny scale against a real all-in-one reel
// with adaptive streaming on, over real sockets: a few viewers for two
// short steps, the same files from a plain file server, and the first
// rendition of a small clip behind a queued one.
func TestStreamingScenariosAgainstReel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and runs ffmpeg")
	}
	sqldbtest.Engines(t, streamingScenarios)
}

func streamingScenarios(t *testing.T, dbURL string) {
	const adminEmail, adminPassword = "admin@example.com", "admin-password-1"
	dir := t.TempDir()
	// 640×360 H.264 and AAC with keyframes every second: its first
	// rendition is a remux, a 360p rung. The queued clip is MPEG-4 Part 2,
	// which is transcoded.
	lavfi := []string{"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=3", "-f", "lavfi", "-i", "sine=duration=3"}
	mediatest.FFmpeg(t, append(lavfi, "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-movflags", "+faststart", "file:"+filepath.Join(dir, "clip.mp4"))...)
	mediatest.FFmpeg(t, "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10:duration=1", "-c:v", "mpeg4",
		"file:"+filepath.Join(dir, "queued.mp4"))
	clip := readFile(t, filepath.Join(dir, "clip.mp4"))
	queued := readFile(t, filepath.Join(dir, "queued.mp4"))

	base, _ := startReel(t, map[string]string{
		"REEL_ADMIN_EMAIL": adminEmail, "REEL_ADMIN_PASSWORD": adminPassword, "REEL_DATABASE_URL": dbURL,
		"REEL_STREAMING": "on",
	})
	admin := login(t, base, adminEmail, adminPassword)
	id := upload(t, base, admin, clip)
	// To the trash once played, which stops its jobs: neither the first
	// rendition's run nor the server's shutdown waits for its ladder.
	trash := func() {
		req, _ := http.NewRequest("DELETE", base+"/api/v1/videos/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	t.Cleanup(trash)
	master := waitHLS(t, base, admin, id)

	// A step of two viewers, then one of four, each fetching a segment
	// every 200 ms. The target is out of reach of a busy machine's
	// latency: a step passes on its errors alone.
	res, err := loadtest.RunViewers(t.Context(), loadtest.ViewersConfig{
		BaseURL: base, VideoID: id, Accounts: 2, Start: 2, Step: 2, Max: 4, StepDuration: 2 * time.Second,
		Interval: 200 * time.Millisecond, TargetP99: 5 * time.Minute, Timeout: 30 * time.Second, ServerPIDs: []int{os.Getpid()},
	})
	if err != nil {
		t.Fatal(err)
	}
	logViewers(t, res)
	checkViewers(t, res, 2, 4)
	if res.Mode != "reel" || res.Rung.Height != 360 || res.Rung.Segments == 0 || res.Rung.Bytes == 0 {
		t.Errorf("mode %s, rung %+v", res.Mode, res.Rung)
	}
	for _, s := range res.Steps {
		if s.ServerRSSMiB <= 0 || s.ServerCPU < 0 || s.GeneratorCPU < 0 {
			t.Errorf("step of %d: server RSS %.1f MiB, CPU %.2f, generator CPU %.2f", s.Viewers, s.ServerRSSMiB, s.ServerCPU, s.GeneratorCPU)
		}
	}
	if r := playback(res.API); r == nil || r.Requests < 4 || r.Errors != 0 {
		t.Errorf("grants: %+v", r)
	}

	// The same files from a plain file server, played by their path.
	files := t.TempDir()
	copyHLS(t, master, files)
	fs := httptest.NewServer(http.FileServer(http.Dir(files)))
	t.Cleanup(fs.Close)
	res, err = loadtest.RunViewers(t.Context(), loadtest.ViewersConfig{
		BaseURL: fs.URL, Master: "/master.m3u8", Start: 3, StepDuration: 2 * time.Second,
		Interval: 200 * time.Millisecond, TargetP99: 5 * time.Minute, Timeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	logViewers(t, res)
	checkViewers(t, res, 3)
	if res.Mode != "files" || len(res.API) != 0 {
		t.Errorf("mode %s with %d API routes", res.Mode, len(res.API))
	}

	trash()
	first, err := loadtest.RunFirstRendition(t.Context(), loadtest.FirstRenditionConfig{
		BaseURL: base, Video: clip, Uploads: 1, Queue: queued, Queued: 1, Poll: 50 * time.Millisecond, Wait: 3 * time.Minute,
		AdminEmail: adminEmail, AdminPassword: adminPassword, Timeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	var sum strings.Builder
	_ = loadtest.WriteFirstRenditionSummary(&sum, first)
	t.Logf("\n%s", sum.String())
	if len(first.Samples) != 1 || first.Errors != 0 {
		t.Fatalf("samples %+v, %d errors", first.Samples, first.Errors)
	}
	s := first.Samples[0]
	if s.FirstS <= 0 || s.Rendition != "640x360" || s.JobsAhead < 0 || first.P50S != first.MaxS || first.P50S <= 0 {
		t.Errorf("sample %+v, p50 %.3f s, max %.3f s", s, first.P50S, first.MaxS)
	}
	for _, r := range first.API {
		if r.Errors != 0 {
			t.Errorf("%s: %d errors: %v %v", r.Name, r.Errors, r.Status, r.ErrorSamples)
		}
	}
	// Each video it uploaded went to the trash.
	trashed := map[string]int{}
	for _, r := range first.API {
		trashed[r.Name] = int(r.Requests)
	}
	if trashed[loadtest.RouteUpload] != 2 || trashed[loadtest.RouteDelete] != 2 {
		t.Errorf("%d uploads, %d trashed", trashed[loadtest.RouteUpload], trashed[loadtest.RouteDelete])
	}
	out := t.TempDir()
	if err := loadtest.WriteFirstRendition(out, first); err != nil {
		t.Fatal(err)
	}
	var back loadtest.FirstRenditionResults
	if err := json.Unmarshal(readFile(t, filepath.Join(out, loadtest.FirstRenditionFile)), &back); err != nil || len(back.Samples) != 1 {
		t.Fatalf("first-rendition.json: %v", err)
	}
}

// checkViewers checks a viewers run stepping through want viewers: every
// step with segments, no error, every viewer playing by its end, and
// passing.
func checkViewers(t *testing.T, res *loadtest.ViewersResults, want ...int) {
	t.Helper()
	if len(res.Steps) != len(want) || res.StopReason != "max" || res.Best != want[len(want)-1] {
		t.Fatalf("%d steps, stopped by %s, best %d; want %v", len(res.Steps), res.StopReason, res.Best, want)
	}
	for i, s := range res.Steps {
		if s.Viewers != want[i] || s.Segments == 0 || s.Errors != 0 || !s.Pass || s.Dials == 0 && i == 0 {
			t.Errorf("step %d: %+v", i, s)
		}
		if s.TTFB.P50 <= 0 || s.Download.P50 < s.TTFB.P50 || s.MiBps <= 0 {
			t.Errorf("step %d: TTFB %+v, download %+v, %.2f MiB/s", i, s.TTFB, s.Download, s.MiBps)
		}
	}
	out := t.TempDir()
	if err := loadtest.WriteViewers(out, res); err != nil {
		t.Fatal(err)
	}
	var back loadtest.ViewersResults
	if err := json.Unmarshal(readFile(t, filepath.Join(out, loadtest.ViewersFile)), &back); err != nil || len(back.Steps) != len(res.Steps) {
		t.Fatalf("viewers.json: %v", err)
	}
	if svg := readFile(t, filepath.Join(out, loadtest.ViewersChartFile)); !strings.Contains(string(svg), "<svg") {
		t.Fatal("viewers.svg is not an SVG image")
	}
}

func logViewers(t *testing.T, res *loadtest.ViewersResults) {
	t.Helper()
	var sum strings.Builder
	_ = loadtest.WriteViewersSummary(&sum, res)
	t.Logf("\n%s", sum.String())
}

func playback(routes []loadtest.RouteResult) *loadtest.RouteResult {
	for i := range routes {
		if routes[i].Name == loadtest.RoutePlayback {
			return &routes[i]
		}
	}
	return nil
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// api sends one request to reel's API and decodes its JSON answer into out
// (when not nil), failing the test unless the status is want.
func api(t *testing.T, method, url, token, ctype string, body io.Reader, want int, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, url, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, b)
		}
	}
}

func login(t *testing.T, base, email, password string) string {
	t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	api(t, "POST", base+"/api/v1/auth/login", "", "application/json",
		strings.NewReader(`{"email":"`+email+`","password":"`+password+`"}`), http.StatusOK, &tok)
	return tok.AccessToken
}

func upload(t *testing.T, base, token string, video []byte) string {
	t.Helper()
	body, ctype := multipartVideo(t, video)
	var v struct {
		Video struct {
			ID string `json:"id"`
		} `json:"video"`
	}
	api(t, "POST", base+"/api/v1/videos", token, ctype, body, http.StatusCreated, &v)
	return v.Video.ID
}

// waitHLS waits for the video's master playlist to list a rung of 360p
// and returns the master's URL.
func waitHLS(t *testing.T, base, token, id string) string {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var pb struct {
			HLSURL *string `json:"hls_url"`
		}
		api(t, "POST", base+"/api/v1/videos/"+id+"/playback", token, "", nil, http.StatusOK, &pb)
		if pb.HLSURL != nil {
			m := get(t, *pb.HLSURL)
			if strings.Contains(string(m), "RESOLUTION=640x360") {
				return *pb.HLSURL
			}
		}
		if time.Now().After(deadline) {
			var v any
			api(t, "GET", base+"/api/v1/videos/"+id, token, "", nil, http.StatusOK, &v)
			var j any
			api(t, "GET", base+"/api/v1/jobs", token, "", nil, http.StatusOK, &j)
			t.Fatalf("no 360p rendition after 3 min: %v\njobs %v", v, j)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return b
}

// copyHLS copies the master playlist at master, the playlists it lists and
// the files they name into dir, as scripts/bench.sh lays them out for
// nginx.
func copyHLS(t *testing.T, master, dir string) {
	t.Helper()
	prefix := master[:strings.LastIndexByte(master, '/')+1]
	m := get(t, master)
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("master.m3u8", m)
	seen := map[string]bool{}
	for line := range strings.Lines(string(m)) {
		pl := strings.TrimSpace(line)
		if pl == "" || strings.HasPrefix(pl, "#") {
			continue
		}
		b := get(t, prefix+pl)
		write(pl, b)
		for l := range strings.Lines(string(b)) {
			l = strings.TrimSpace(l)
			if name, ok := strings.CutPrefix(l, `#EXT-X-MAP:URI="`); ok {
				l, _, _ = strings.Cut(name, `"`)
			}
			if l == "" || strings.HasPrefix(l, "#") || seen[l] {
				continue
			}
			seen[l] = true
			write(l, get(t, prefix+l))
		}
	}
}

// multipartVideo is an upload form with a title and the video.
func multipartVideo(t *testing.T, video []byte) (io.Reader, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	_ = mw.WriteField("title", "streaming smoke")
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="video"; filename="clip.mp4"`)
	h.Set("Content-Type", "video/mp4")
	w, err := mw.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write(video)
	_ = mw.Close()
	return &b, mw.FormDataContentType()
}
