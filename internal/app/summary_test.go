package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/app"
	"github.com/reel-video/reel/internal/app/apptest"
	"github.com/reel-video/reel/internal/platform/obs"
)

func TestOpenURL(t *testing.T) {
	for _, c := range []struct {
		addr string
		tls  bool
		want string
	}{
		{":8080", false, "http://localhost:8080/"},
		{"0.0.0.0:8080", false, "http://localhost:8080/"},
		{"[::]:8080", false, "http://localhost:8080/"}, // what a listener on ":8080" reports
		{"127.0.0.1:9000", false, "http://127.0.0.1:9000/"},
		{"[::1]:8080", false, "http://[::1]:8080/"},
		{"reel.example.com:443", true, "https://reel.example.com:443/"},
		{":8443", true, "https://localhost:8443/"},
		{"[::1]:8443", true, "https://[::1]:8443/"},
		{"no-port", false, ""},
	} {
		if got := app.OpenURL(c.addr, c.tls); got != c.want {
			t.Errorf("OpenURL(%q, tls=%v) = %q, want %q", c.addr, c.tls, got, c.want)
		}
	}
}

func newApp(t *testing.T, env map[string]string, log *slog.Logger) (*app.App, string) {
	t.Helper()
	dir := t.TempDir()
	vars := map[string]string{"REEL_DATA_DIR": dir}
	for k, v := range env {
		vars[k] = v
	}
	return apptest.New(t, vars, log), dir
}

func summary(a *app.App) map[string]string {
	kv := a.Summary()
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = fmt.Sprint(kv[i+1])
	}
	return m
}

func TestSummary(t *testing.T) {
	a, dir := newApp(t, nil, obs.Discard())
	got := summary(a)
	want := map[string]string{
		"target":   "all",
		"data_dir": dir,
		"database": "sqlite " + filepath.Join(dir, "reel.db"),
		"blobs":    "files " + filepath.Join(dir, "blobs"),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("embedded defaults:\ngot  %v\nwant %v", got, want)
	}

	secrets := map[string]string{
		"REEL_DATABASE_URL":        "postgres://reel:hunter2@db:5432/reel?sslmode=disable",
		"REEL_VIDEOS_DATABASE_URL": "postgres://videos:videopw@db2/videos",
		"REEL_BLOB_URL":            "s3://clips?endpoint=s3.example.com&access_key=AK&secret_key=s3cr3tkey",
		"REEL_ADMIN_EMAIL":         "root@example.com",
		"REEL_ADMIN_PASSWORD":      "adminpassword",
		"REEL_SERVICE_KEY":         strings.Repeat("k", 40),
		"REEL_URL_SIGNING_KEY":     strings.Repeat("s", 40),
	}
	a, _ = newApp(t, secrets, obs.Discard())
	got = summary(a)
	printed := fmt.Sprint(a.Summary())
	for _, s := range []string{"hunter2", "videopw", "s3cr3tkey", "adminpassword", strings.Repeat("k", 40), strings.Repeat("s", 40)} {
		if strings.Contains(printed, s) {
			t.Errorf("secret %q in the summary: %s", s, printed)
		}
	}
	if got["users_database"] != "postgresql postgres://reel:xxxxx@db:5432/reel?sslmode=disable" ||
		got["videos_database"] != "postgresql postgres://videos:xxxxx@db2/videos" || got["database"] != "" {
		t.Errorf("databases: %v", got)
	}
	if !strings.HasPrefix(got["blobs"], "s3 s3://clips?") || !strings.Contains(got["blobs"], "endpoint=s3.example.com") {
		t.Errorf("blobs: %q", got["blobs"])
	}

	// A gateway has neither database nor blob store.
	a, _ = newApp(t, map[string]string{"REEL_TARGET": "gateway"}, obs.Discard())
	if got := summary(a); got["database"] != "" || got["blobs"] != "" || len(got) != 2 {
		t.Errorf("gateway: %v", got)
	}
}

// A taken port fails at once (before any database is made) with one line
// that names the setting to change.
func TestBusyPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	for _, c := range []struct{ env, flag string }{{"REEL_HTTP_ADDR", "-http-addr"}, {"REEL_DEBUG_ADDR", "-debug-addr"}} {
		env := map[string]string{c.env: addr}
		if c.env == "REEL_DEBUG_ADDR" {
			env["REEL_HTTP_ADDR"] = "127.0.0.1:0"
		}
		a, dir := newApp(t, env, obs.Discard())
		err := a.Run(context.Background(), nil)
		if err == nil {
			t.Fatalf("%s: started on a taken port", c.env)
		}
		msg := err.Error()
		if !errors.Is(err, syscall.EADDRINUSE) || strings.Contains(msg, "\n") ||
			!strings.Contains(msg, addr) || !strings.Contains(msg, c.env) || !strings.Contains(msg, c.flag) {
			t.Errorf("%s: want one line naming %s, %s and %s: %q", c.env, addr, c.env, c.flag, msg)
		}
		_, port, _ := net.SplitHostPort(addr)
		next := fmt.Sprint(atoi(port) + 1)
		if !strings.Contains(msg, c.env+"=127.0.0.1:"+next) {
			t.Errorf("%s: want a suggestion of the next port: %q", c.env, msg)
		}
		if _, err := os.Stat(filepath.Join(dir, "reel.db")); c.env == "REEL_HTTP_ADDR" && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the modules started before the port was found taken: %v", err)
		}
	}
}

func atoi(s string) (n int) {
	fmt.Sscan(s, &n)
	return n
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The line saying that reel serves carries the URL to open, with the port
// the listener got.
func TestServingLineHasURL(t *testing.T) {
	var logs syncBuffer
	a, _ := newApp(t, map[string]string{"REEL_HTTP_ADDR": "127.0.0.1:0"}, obs.NewLogger(&logs, "info", "json"))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx, nil) }()
	select {
	case <-waitAddr(a):
	case err := <-errc:
		t.Fatal(err)
	}
	addr := a.Addr().String()
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("app did not stop")
	}
	for line := range strings.SplitSeq(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "reel is serving" {
			if m["url"] != "http://"+addr+"/" {
				t.Fatalf("url %v, want http://%s/", m["url"], addr)
			}
			return
		}
	}
	t.Fatalf("no serving line:\n%s", logs.String())
}
