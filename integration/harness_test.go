// Package integration runs the real reel binary: all-in-one on SQLite, and
// split into one OS process per service, each on its own PostgreSQL
// database, with the blob store on a real S3 server, behind the gateway.
package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/porttest"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

var reelBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "reel-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	reelBin = filepath.Join(dir, "reel")
	build := exec.Command("go", "build", "-o", reelBin, "../cmd/reel")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build reel:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	adminEmail    = "root@example.com"
	adminPassword = "integration admin"
)

// proc is one reel process.
type proc struct {
	t    *testing.T
	name string
	env  []string
	addr string
	log  *bytes.Buffer
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
	// dataDir and dbURL are the process's data directory and database
	// (dbURL is empty for the gateway and on SQLite).
	dataDir, dbURL string
	// bin is the binary to run: reelBin unless set (another release's).
	bin string
	// wrap, when set, runs the process under a command (e.g. ip netns
	// exec <ns>) that execs it in place.
	wrap []string
}

type syncBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (s syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (p *proc) start() {
	p.t.Helper()
	bin := p.bin
	if bin == "" {
		bin = reelBin
	}
	cmd := exec.Command(bin, "serve")
	if len(p.wrap) > 0 {
		cmd = exec.Command(p.wrap[0], append(p.wrap[1:], bin, "serve")...)
	}
	cmd.Env = append(os.Environ(), p.env...)
	w := syncBuffer{&p.mu, p.log}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd = cmd
	p.done = make(chan error, 1)
	go func() { p.done <- cmd.Wait() }()
	p.waitReady()
}

func (p *proc) base() string { return "http://" + p.addr }

func (p *proc) waitReady() {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.t.Fatalf("%s exited at start: %v\n%s", p.name, err, p.logs())
		default:
		}
		res, err := http.Get(p.base() + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("%s not ready in time\n%s", p.name, p.logs())
}

// restart stops the process with sig and starts it again on the same
// address, data and database.
func (p *proc) restart(sig syscall.Signal) {
	p.t.Helper()
	_ = p.stop(sig) // a SIGKILL or a cut-short drain exits non-zero
	p.start()
}

// stop sends sig and waits for the exit.
func (p *proc) stop(sig syscall.Signal) error {
	if p.cmd == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(sig)
	return p.wait()
}

// wait waits for the process to exit (after a signal), killing it if it
// takes too long.
func (p *proc) wait() error {
	select {
	case err := <-p.done:
		p.cmd = nil
		return err
	case <-time.After(45 * time.Second):
		_ = p.cmd.Process.Kill()
		p.cmd = nil
		return fmt.Errorf("%s did not stop in time", p.name)
	}
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.log.String()
	if len(s) > 20000 {
		s = "…" + s[len(s)-20000:]
	}
	return s
}

// cluster is a running reel: one process (all) or one per service.
type cluster struct {
	t     *testing.T
	procs map[string]*proc
	// order is the order in which split mode starts its processes.
	order []string
	entry string // the public base URL
	blob  string // the videos blob store URL (split mode: S3)
}

func randomKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (c *cluster) add(name string, env ...string) *proc {
	p := &proc{t: c.t, name: name, addr: porttest.Addr(c.t), log: &bytes.Buffer{}}
	p.env = append([]string{"REEL_HTTP_ADDR=" + p.addr, "REEL_LOG_FORMAT=json", "REEL_SHUTDOWN_TIMEOUT=20s"}, env...)
	c.procs[name] = p
	c.t.Cleanup(func() {
		if err := p.stop(syscall.SIGTERM); err != nil {
			c.t.Errorf("%s: %v", name, err)
		}
		if c.t.Failed() {
			c.t.Logf("--- %s log ---\n%s", name, p.logs())
		}
	})
	return p
}

// common limits: generous enough for the flow, tight enough to matter.
// The flow and fault tests count a video's own bytes and its poster's
// exactly; adaptive streaming, which charges renditions too, is tested in
// internal/videos and internal/media.
var limits = []string{
	"REEL_STREAMING=off",
	"REEL_STORAGE_QUOTA=50MiB", "REEL_DAILY_UPLOAD_LIMIT=100MiB", "REEL_DAILY_EGRESS_LIMIT=1GiB",
	"REEL_ADMIN_EMAIL=" + adminEmail, "REEL_ADMIN_PASSWORD=" + adminPassword,
}

// allInOne starts `reel serve` (target all) on SQLite and the local disk.
func allInOne(t *testing.T) *cluster {
	c := &cluster{t: t, procs: map[string]*proc{}}
	p := c.add("all", append([]string{"REEL_DATA_DIR=" + t.TempDir()}, limits...)...)
	p.start()
	c.entry = p.base()
	return c
}

// s3URL returns the test S3 server's URL with a bucket of this test's own.
func s3URL(t *testing.T) string {
	t.Helper()
	raw := os.Getenv("REEL_TEST_S3_URL")
	if raw == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("REEL_TEST_S3_URL is empty but CI is set: run scripts/test.sh")
		}
		t.Skip("S3 NOT AVAILABLE: run scripts/test.sh")
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = "it-" + randomKey()[:16]
	q := u.Query()
	q.Set("create_bucket", "true")
	u.RawQuery = q.Encode()
	return u.String()
}

var splitOrder = []string{"users", "logs", "storage", "usage", "videos", "gateway"}

// split starts one process per service, each on its own PostgreSQL
// database, videos on the S3 server, and the gateway in front.
func split(t *testing.T) *cluster { return splitWith(t, nil) }

// splitWith is split with extra environment for some processes (by
// service name); a variable given twice takes its last value.
func splitWith(t *testing.T, extra map[string][]string) *cluster { return splitPrepared(t, extra, nil) }

// splitPrepared is splitWith with prepare called before any process
// starts: it may change the processes' environment and add processes
// (inserting them in c.order before the gateway).
func splitPrepared(t *testing.T, extra map[string][]string, prepare func(c *cluster)) *cluster {
	c := &cluster{t: t, procs: map[string]*proc{}, order: slices.Clone(splitOrder)}
	key := randomKey()
	c.blob = s3URL(t)
	for _, name := range splitOrder {
		dataDir := t.TempDir()
		env := append([]string{"REEL_TARGET=" + name, "REEL_DATA_DIR=" + dataDir, "REEL_SERVICE_KEY=" + key,
			"REEL_TRUSTED_PROXIES=127.0.0.1/32"}, limits...)
		var dbURL string
		if name != "gateway" {
			dbURL = sqldbtest.PostgresURL(t)
			env = append(env, "REEL_DATABASE_URL="+dbURL)
		}
		if name == "videos" {
			env = append(env, "REEL_BLOB_URL="+c.blob)
		}
		p := c.add(name, append(env, extra[name]...)...)
		p.dataDir, p.dbURL = dataDir, dbURL
	}
	var urls []string
	for _, name := range splitOrder {
		if name != "gateway" {
			urls = append(urls, "REEL_"+strings.ToUpper(name)+"_URL="+c.procs[name].base())
		}
	}
	for _, name := range splitOrder {
		p := c.procs[name]
		p.env = append(p.env, urls...)
	}
	if prepare != nil {
		prepare(c)
	}
	for _, name := range c.order {
		c.procs[name].start()
	}
	c.entry = c.procs["gateway"].base()
	return c
}

// client talks to the cluster's public address as one user.
type client struct {
	t     *testing.T
	base  string
	token string
	http  *http.Client
}

func (c *cluster) client() *client {
	return &client{t: c.t, base: c.entry, http: &http.Client{Timeout: 60 * time.Second}}
}

type answer struct {
	status int
	header http.Header
	raw    []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.raw, &m); err != nil {
		t.Fatalf("not JSON (%d): %s", a.status, a.raw)
	}
	return m
}

func (cl *client) do(method, path string, body io.Reader, hdr ...string) answer {
	cl.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, cl.url(path), body)
	if err != nil {
		cl.t.Fatal(err)
	}
	if cl.token != "" {
		req.Header.Set("Authorization", "Bearer "+cl.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := cl.http.Do(req)
	if err != nil {
		return answer{status: -1, raw: []byte(err.Error())}
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, header: res.Header, raw: raw}
}

func (cl *client) url(path string) string {
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		return path
	}
	return cl.base + path
}

func (cl *client) jsonDo(method, path string, v any, want int) map[string]any {
	cl.t.Helper()
	var body io.Reader
	var hdr []string
	if v != nil {
		b, _ := json.Marshal(v)
		body = bytes.NewReader(b)
		hdr = []string{"Content-Type", "application/json"}
	}
	a := cl.do(method, path, body, hdr...)
	if a.status != want {
		cl.t.Fatalf("%s %s: %d, want %d: %s", method, path, a.status, want, a.raw)
	}
	if len(a.raw) == 0 {
		return nil
	}
	return a.json(cl.t)
}

// login registers (unless registered) and logs in.
func (cl *client) login(email, password string, register bool) string {
	cl.t.Helper()
	if register {
		cl.jsonDo("POST", "/api/v1/auth/register", map[string]string{"email": email, "password": password, "username": strings.Split(email, "@")[0]}, 201)
	}
	m := cl.jsonDo("POST", "/api/v1/auth/login", map[string]string{"email": email, "password": password}, 200)
	cl.token = m["access_token"].(string)
	return m["user"].(map[string]any)["id"].(string)
}

// upload sends a multipart upload of the file at path.
func (cl *client) upload(path, title string) answer {
	cl.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("title", title)
	fw, _ := mw.CreateFormFile("video", filepath.Base(path))
	f, err := os.Open(path)
	if err != nil {
		cl.t.Fatal(err)
	}
	_, _ = io.Copy(fw, f)
	f.Close()
	_ = mw.Close()
	return cl.do("POST", "/api/v1/videos", &buf, "Content-Type", mw.FormDataContentType())
}

// makeVideo writes a small real MP4 with ffmpeg.
func makeVideo(t *testing.T, seconds int) string {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ffmpeg is not installed but CI is set")
		}
		t.Skip("FFMPEG NOT INSTALLED: apt-get install ffmpeg")
	}
	out := filepath.Join(t.TempDir(), "clip.mp4")
	cmd := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", fmt.Sprintf("testsrc=duration=%d:size=320x240:rate=25", seconds),
		"-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}
