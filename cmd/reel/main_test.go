package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildReel compiles the binary once per test run.
func buildReel(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "reel")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestServeAndSIGTERM starts the real binary on its embedded defaults,
// waits for /readyz, walks the README's curl example, sends SIGTERM and
// expects a clean exit.
func TestServeAndSIGTERM(t *testing.T) {
	bin := buildReel(t)
	dir := t.TempDir()
	addr := freePort(t)
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
	out.Reset()
	err := run(ctx, []string{"user", "create", "-email", "Root@Example.com", "-password", "correct horse", "-username", "root", "-admin"}, env, &out, &errOut)
	if err != nil || !strings.Contains(out.String(), "created admin root@example.com") {
		t.Fatalf("user create: %v %q\n%s", err, out.String(), errOut.String())
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
