package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/porttest"
)

var build struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// buildReel compiles the binary once per test run.
func buildReel(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		if build.dir, build.err = os.MkdirTemp("", "reel-bin"); build.err != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(build.dir, "reel"), ".").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatalf("build: %v", build.err)
	}
	return filepath.Join(build.dir, "reel")
}

// TestServeAndSIGTERM starts the real binary on its embedded defaults,
// waits for /readyz, walks the README's curl example, sends SIGTERM and
// expects a clean exit.
func TestServeAndSIGTERM(t *testing.T) {
	bin := buildReel(t)
	dir := t.TempDir()
	addr := porttest.Addr(t)
	cmd := exec.Command(bin, "serve")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "REEL_HTTP_ADDR="+addr, "REEL_LOG_FORMAT=text")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	post := func(path, token, body string) (int, string) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if st, body := post("/api/v1/auth/register", "", `{"email":"ann@example.com","password":"correct horse","username":"ann"}`); st != 201 {
		t.Fatalf("register: %d %s", st, body)
	}
	st, body := post("/api/v1/auth/login", "", `{"email":"ann@example.com","password":"correct horse"}`)
	if st != 200 {
		t.Fatalf("login: %d %s", st, body)
	}
	tok := body[strings.Index(body, `"access_token":"`)+16:]
	tok = tok[:strings.Index(tok, `"`)]
	req, _ := http.NewRequest("GET", base+"/api/v1/users/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("me: %v %v", res, err)
	}
	res.Body.Close()

	// The embedded defaults put the database under ./data.
	if _, err := os.Stat(filepath.Join(dir, "data", "reel.db")); err != nil {
		t.Fatalf("default database: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit after SIGTERM\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "reel stopped") {
		t.Fatalf("no clean stop in the log:\n%s", logs.String())
	}
	// The start says what is where and which URL to open; the full
	// configuration is for debug level.
	for _, want := range []string{"INFO  starting reel version=", ` database="sqlite data/reel.db"`, "INFO  reel is serving url=" + base + "/ "} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %q in the log:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "REEL_") {
		t.Errorf("the configuration is logged at info level:\n%s", logs.String())
	}
}

// A second reel on a taken port exits non-zero at once, its last line
// naming the setting to change.
func TestBusyPortExits(t *testing.T) {
	bin := buildReel(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cmd := exec.Command(bin, "serve")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "REEL_HTTP_ADDR="+taken.Addr().String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("want a non-zero exit, got %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "reel: cannot listen on "+taken.Addr().String()+": address already in use") ||
		!strings.Contains(last, "REEL_HTTP_ADDR") || !strings.Contains(last, "-http-addr") {
		t.Fatalf("last line: %q", last)
	}
}

func TestCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	env := func(k string) string {
		if k == "REEL_DATA_DIR" {
			return dir
		}
		return ""
	}
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"version"}, env, &out, &errOut); err != nil || !strings.HasPrefix(out.String(), "reel ") {
		t.Fatalf("version: %v %q", err, out.String())
	}
	if err := run(ctx, []string{"migrate"}, env, &out, &errOut); err != nil {
		t.Fatalf("migrate: %v\n%s", err, errOut.String())
	}
	// user create says what it did, in one line, and nothing else.
	out.Reset()
	errOut.Reset()
	err := run(ctx, []string{"user", "create", "-email", "Root@Example.com", "-password", "correct horse", "-username", "root", "-admin"}, env, &out, &errOut)
	if err != nil || !regexp.MustCompile(`^created admin root@example\.com \([0-9a-f-]{36}\)\n$`).MatchString(out.String()) || errOut.Len() != 0 {
		t.Fatalf("user create: %v\nstdout %q\nstderr %q", err, out.String(), errOut.String())
	}
	out.Reset()
	err = run(ctx, []string{"user", "create", "-email", "ann@example.com", "-password", "correct horse", "-username", "ann"}, env, &out, &errOut)
	if err != nil || !regexp.MustCompile(`^created user ann@example\.com \([0-9a-f-]{36}\)\n$`).MatchString(out.String()) || errOut.Len() != 0 {
		t.Fatalf("user create: %v\nstdout %q\nstderr %q", err, out.String(), errOut.String())
	}
	if err := run(ctx, []string{"keys", "rotate"}, env, &out, &errOut); err != nil || !strings.Contains(out.String(), "rotated") {
		t.Fatalf("keys rotate: %v %q", err, out.String())
	}
	if err := run(ctx, []string{"user", "create", "-email", "root@example.com", "-password", "correct horse", "-username", "x"}, env, &out, &errOut); err == nil {
		t.Fatal("duplicate user created")
	}
	if err := run(ctx, []string{"user", "create", "-email", "x@example.com"}, env, &out, &errOut); err == nil {
		t.Fatal("user without password created")
	}
	for _, bad := range [][]string{{"nope"}, {}, {"serve", "-target", "bogus"}} {
		if err := run(ctx, bad, env, &out, &errOut); err == nil {
			t.Fatalf("%v accepted", bad)
		}
	}
	errOut.Reset()
	err = run(ctx, []string{"serve"}, func(k string) string {
		if k == "REEL_STORAGE_QUOTA" {
			return "lots"
		}
		return env(k)
	}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "REEL_STORAGE_QUOTA") {
		t.Fatalf("bad config: %v", err)
	}
}

// -print-config prints the effective configuration, secrets masked, one
// REEL_*=value per line, and ends the command without doing anything else.
func TestPrintConfig(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"REEL_DATA_DIR": dir, "REEL_ADMIN_EMAIL": "root@example.com", "REEL_ADMIN_PASSWORD": "hunter2hunter2",
		"REEL_DATABASE_URL": "postgres://reel:dbsecret@db/reel"}
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"serve", "-print-config", "-http-addr", "127.0.0.1:1"}, func(k string) string { return env[k] }, &out, &errOut)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	for _, want := range []string{"REEL_HTTP_ADDR=127.0.0.1:1", "REEL_ADMIN_PASSWORD=xxxxx", "REEL_DATABASE_URL=postgres://reel:xxxxx@db/reel", "REEL_LOG_FORMAT=auto"} {
		if !slices.Contains(lines, want) {
			t.Errorf("no line %q in\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "hunter2") || strings.Contains(out.String(), "dbsecret") {
		t.Errorf("a secret printed:\n%s", out.String())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 || errOut.Len() != 0 {
		t.Errorf("-print-config did more than print: %v %q", entries, errOut.String())
	}
}

// serve and loadtest collect garbage at GOGC=200 unless the environment
// says otherwise.
func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	tuneGC(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Fatalf("GOGC unset: the runtime has GOGC=%d, want %d", got, gcPercent)
	}
	debug.SetGCPercent(50) // what GOGC=50 in the environment gives
	tuneGC(func(k string) string {
		if k == "GOGC" {
			return "50"
		}
		return ""
	})
	if got := debug.SetGCPercent(100); got != 50 {
		t.Fatalf("GOGC=50 in the environment was overridden with %d", got)
	}
}

// backup and restore take their directory first and the usual settings
// after it; the restored data directory has the account.
func TestBackupCommands(t *testing.T) {
	ctx := context.Background()
	data, dest, restored := t.TempDir(), filepath.Join(t.TempDir(), "backup"), filepath.Join(t.TempDir(), "restored")
	env := func(k string) string {
		if k == "REEL_DATA_DIR" {
			return data
		}
		return ""
	}
	var out, errOut bytes.Buffer
	for _, args := range [][]string{{"backup"}, {"backup", "-data-dir", data}, {"restore"}} {
		if err := run(ctx, args, env, &out, &errOut); err == nil || !strings.Contains(err.Error(), "usage: reel "+args[0]) {
			t.Errorf("%v: %v", args, err)
		}
	}
	if err := run(ctx, []string{"user", "create", "-email", "ann@example.com", "-password", "correct horse", "-username", "ann"}, env, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(ctx, []string{"backup", dest}, env, &out, &errOut); err != nil || !strings.HasPrefix(out.String(), "backed up 1 database and 0 blobs") {
		t.Fatalf("backup: %v %q", err, out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"restore", dest, "-data-dir", restored}, env, &out, &errOut); err != nil || !strings.HasPrefix(out.String(), "restored 1 database and 0 blobs") {
		t.Fatalf("restore: %v %q", err, out.String())
	}
	err := run(ctx, []string{"user", "create", "-data-dir", restored, "-email", "ann@example.com", "-password", "correct horse", "-username", "ann"}, env, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "taken") {
		t.Fatalf("the restored data directory has no account ann@example.com: %v", err)
	}
	if err := run(ctx, []string{"restore", dest, "-data-dir", restored}, env, &out, &errOut); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore over data: %v", err)
	}
}
