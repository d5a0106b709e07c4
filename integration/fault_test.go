package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// The fault tests run the split deployment (one process per service, each
// on its own PostgreSQL database, videos on S3, the gateway in front) and
// take one service away at a time, a file for each service
// (fault_<service>_test.go). This file holds the helpers they share.

// doJSON sends v as JSON with a request id.
func (cl *client) doJSON(requestID, method, path string, v any) answer {
	cl.t.Helper()
	var body io.Reader
	hdr := []string{"X-Request-ID", requestID}
	if v != nil {
		b, _ := json.Marshal(v)
		body = bytes.NewReader(b)
		hdr = append(hdr, "Content-Type", "application/json")
	}
	return cl.do(method, path, body, hdr...)
}

// loginID logs in with a request id.
func (cl *client) loginID(requestID, email, password string) {
	cl.t.Helper()
	a := cl.doJSON(requestID, "POST", "/api/v1/auth/login", map[string]string{"email": email, "password": password})
	if a.status != 200 {
		cl.t.Fatalf("login: %d %s", a.status, a.raw)
	}
	cl.token = a.json(cl.t)["access_token"].(string)
}

// get is a GET that may run off the test's goroutine (it never fails the
// test itself).
func (cl *client) get(path string) answer {
	req, err := http.NewRequest("GET", cl.url(path), nil)
	if err != nil {
		return answer{status: -1, raw: []byte(err.Error())}
	}
	req.Header.Set("Authorization", "Bearer "+cl.token)
	res, err := cl.http.Do(req)
	if err != nil {
		return answer{status: -1, raw: []byte(err.Error())}
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, header: res.Header, raw: raw}
}

// stalled sends a request of len(body) declared bytes: the first n at
// once, then nothing until resume is closed, then the rest slowly (16 KiB
// every 100 ms), as a client on a poor network. The answer, or the
// transport error as status -1, arrives on the channel.
func (cl *client) stalled(resume <-chan struct{}, method, path string, body []byte, n int, hdr ...string) chan answer {
	return cl.paced(resume, 100*time.Millisecond, method, path, body, n, hdr...)
}

// paced is stalled with a pause of pace between 16 KiB pieces of the rest.
func (cl *client) paced(resume <-chan struct{}, pace time.Duration, method, path string, body []byte, n int, hdr ...string) chan answer {
	cl.t.Helper()
	pr, pw := io.Pipe()
	cl.t.Cleanup(func() { _ = pr.CloseWithError(fmt.Errorf("the test ended")) })
	go func() {
		if _, err := pw.Write(body[:n]); err != nil {
			return
		}
		<-resume
		for off := n; off < len(body); off += 16 << 10 {
			time.Sleep(pace)
			if _, err := pw.Write(body[off:min(off+16<<10, len(body))]); err != nil {
				return
			}
		}
		_ = pw.Close()
	}()
	req, err := http.NewRequest(method, cl.url(path), pr)
	if err != nil {
		cl.t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Authorization", "Bearer "+cl.token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	out := make(chan answer, 1)
	go func() {
		res, err := (&http.Client{}).Do(req)
		if err != nil {
			out <- answer{status: -1, raw: []byte(err.Error())}
			return
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		out <- answer{status: res.StatusCode, header: res.Header, raw: raw}
	}()
	return out
}

// tusCreate creates a tus upload and returns its URL.
func (cl *client) tusCreate(title string, size int64) string {
	cl.t.Helper()
	a := cl.do("POST", "/api/v1/uploads", nil, "Tus-Resumable", "1.0.0",
		"Upload-Length", strconv.FormatInt(size, 10), "Upload-Metadata", tusMeta(title, "clip.mp4"))
	if a.status != 201 || a.header.Get("Location") == "" {
		cl.t.Fatalf("tus create: %d %v %s", a.status, a.header, a.raw)
	}
	loc, err := url.Parse(a.header.Get("Location"))
	if err != nil {
		cl.t.Fatal(err)
	}
	return cl.base + loc.Path
}

func tusMeta(title, filename string) string {
	enc := base64.StdEncoding.EncodeToString
	return "title " + enc([]byte(title)) + ",filename " + enc([]byte(filename))
}

func tusPatchHeaders(offset int64) []string {
	return []string{"Tus-Resumable", "1.0.0", "Content-Type", "application/offset+octet-stream", "Upload-Offset", strconv.FormatInt(offset, 10)}
}

// multipartBody is the multipart upload of the file at path.
func multipartBody(t *testing.T, file, title string) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("title", title)
	fw, _ := mw.CreateFormFile("video", filepath.Base(file))
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(b)
	_ = mw.Close()
	return &buf, mw.FormDataContentType()
}

// makeNoisyVideo writes a two-second MP4 of about a megabyte (noise does
// not compress).
func makeNoisyVideo(t *testing.T) string {
	t.Helper()
	makeVideo(t, 1) // the ffmpeg check
	out := filepath.Join(t.TempDir(), "noisy.mp4")
	cmd := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=2:size=320x240:rate=25,noise=alls=60:allf=t",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-movflags", "+faststart", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

func fileSize(t *testing.T, file string) int64 {
	t.Helper()
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// wantUnavailable checks a 503 problem document with Retry-After that
// tells nothing of the inside.
func wantUnavailable(t *testing.T, a answer, what string) {
	t.Helper()
	if a.status != 503 {
		t.Fatalf("%s: %d %s, want 503", what, a.status, a.raw)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s: content type %q", what, ct)
	}
	if ra, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || ra <= 0 {
		t.Fatalf("%s: Retry-After %q", what, a.header.Get("Retry-After"))
	}
	p := a.json(t)
	if p["status"] != float64(503) || p["code"] == "" || p["detail"] == "" {
		t.Fatalf("%s: problem %s", what, a.raw)
	}
	noInternals(t, a.raw)
}

// noInternals fails if an answer shows internal text: addresses, network
// errors, Go error chains.
func noInternals(t *testing.T, raw []byte) {
	t.Helper()
	s := strings.ToLower(string(raw))
	for _, bad := range []string{"127.0.0.1", "dial", "tcp", "refused", "eof", "client:", "storage client", "usage client", "reserve:", "admit upload", "internal/v1", "http://"} {
		if strings.Contains(s, bad) {
			t.Fatalf("the answer shows internal text %q: %s", bad, raw)
		}
	}
}

// posterCut waits until video id's poster, cut after its upload was
// answered on idle cores only (which a busy test machine may keep from
// it for a while), is there.
func posterCut(t *testing.T, cl *client, id string) {
	t.Helper()
	posterCutWithin(t, cl, id, time.Minute)
}

// posterCutWithin is posterCut with a deadline of its own: poster jobs run
// at the lowest CPU priority, so on a busy machine they wait for idle
// cores.
func posterCutWithin(t *testing.T, cl *client, id string, within time.Duration) {
	t.Helper()
	eventually(t, within, func() string {
		pb := cl.do("POST", "/api/v1/videos/"+id+"/playback", nil)
		if pb.status != 200 {
			return fmt.Sprintf("playback: %d %s", pb.status, pb.raw)
		}
		var body struct {
			PosterURL string `json:"poster_url"`
		}
		if err := json.Unmarshal(pb.raw, &body); err != nil || body.PosterURL == "" {
			return fmt.Sprintf("playback: %s", pb.raw)
		}
		if p := cl.do("GET", body.PosterURL, nil); p.status != 200 || p.header.Get("Cache-Control") == "no-store" {
			return fmt.Sprintf("poster: %d %v (the placeholder until it is cut)", p.status, p.header)
		}
		return ""
	})
}

// wantStorage waits until the caller's storage figures are used (any when
// negative) and reserved, and returns them.
func wantStorage(t *testing.T, cl *client, used, reserved int64) map[string]any {
	t.Helper()
	var st map[string]any
	eventually(t, 30*time.Second, func() string {
		a := cl.do("GET", "/api/v1/storage/me", nil)
		if a.status != 200 {
			return fmt.Sprintf("storage/me: %d %s", a.status, a.raw)
		}
		st = a.json(t)
		u, r := int64(st["used_bytes"].(float64)), int64(st["reserved_bytes"].(float64))
		if (used >= 0 && u != used) || r != reserved {
			return fmt.Sprintf("storage %v, want used %d reserved %d", st, used, reserved)
		}
		return ""
	})
	return st
}

// wantDailyUpload waits until the caller's daily upload volume is used
// and reserved.
func wantDailyUpload(t *testing.T, cl *client, used, reserved int64) {
	t.Helper()
	eventually(t, 30*time.Second, func() string {
		a := cl.do("GET", "/api/v1/usage/me", nil)
		if a.status != 200 {
			return fmt.Sprintf("usage/me: %d %s", a.status, a.raw)
		}
		u := a.json(t)["upload"].(map[string]any)
		if int64(u["used_bytes"].(float64)) != used || int64(u["reserved_bytes"].(float64)) != reserved {
			return fmt.Sprintf("daily upload %v, want used %d reserved %d", u, used, reserved)
		}
		return ""
	})
}

// openDB opens a process's database from the test.
func openDB(t *testing.T, p *proc) *sqldb.DB {
	t.Helper()
	if p.dbURL == "" {
		t.Fatalf("%s has no database of its own", p.name)
	}
	db, err := sqldb.Open(t.Context(), p.dbURL, sqldb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func count(t *testing.T, db *sqldb.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.R.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// metric sums a counter or gauge of a process's /metrics for one table
// label.
func metric(t *testing.T, p *proc, name, table string) float64 {
	t.Helper()
	res, err := http.Get(p.base() + "/metrics")
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var sum float64
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, `table="`+table+`"`) {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// dataBytes is the size of the files under a directory of a process's
// data directory.
func dataBytes(t *testing.T, p *proc, dir string) int64 {
	t.Helper()
	var n int64
	_ = filepath.WalkDir(filepath.Join(p.dataDir, dir), func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size() + 1 // an empty file counts too
			}
		}
		return nil
	})
	return n
}

// wantNoFiles checks that no upload left a file on the videos disk.
func wantNoFiles(t *testing.T, videos *proc) {
	t.Helper()
	for _, dir := range []string{"uploads/spool", "uploads/tus"} {
		if n := dataBytes(t, videos, dir); n != 0 {
			entries, _ := os.ReadDir(filepath.Join(videos.dataDir, dir))
			t.Fatalf("files left in %s: %v", dir, entries)
		}
	}
}

// bucketClient is a client of the bucket the test's S3 blob URL names.
func bucketClient(t *testing.T, blobURL string) (*minio.Client, blob.S3Config) {
	t.Helper()
	cfg, err := blob.ParseS3URL(blobURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""), Secure: !cfg.Insecure, Region: cfg.Region,
	})
	if err != nil {
		t.Fatal(err)
	}
	return mc, cfg
}

// wantBlobs checks that the bucket holds exactly keys, and no unfinished
// multipart upload.
func wantBlobs(t *testing.T, blobURL string, keys ...string) {
	t.Helper()
	mc, cfg := bucketClient(t, blobURL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	for o := range mc.ListObjects(ctx, cfg.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		got = append(got, o.Key)
	}
	slices.Sort(got)
	keys = slices.Clone(keys)
	slices.Sort(keys)
	if !slices.Equal(got, keys) {
		t.Fatalf("bucket holds %v, want %v", got, keys)
	}
	for u := range mc.ListIncompleteUploads(ctx, cfg.Bucket, "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		t.Fatalf("unfinished multipart upload left: %s", u.Key)
	}
}
