//go:build unix

package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitForFile waits for a file a tool writes once it has started.
func waitForFile(t *testing.T, path string) []byte {
	t.Helper()
	for range 200 {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 && bytes.HasSuffix(b, []byte("\n")) {
			return b
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
	return nil
}

// TestExecRunnerCancelKillsGroup cancels a tool that has started a child
// holding its output open: Run returns the context's error, and by then
// the child is dead too.
func TestExecRunnerCancelKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	tool := fakeTool(t, "tool", fmt.Sprintf("sleep 60 &\necho $! > %s\nwait\n", pidFile))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- ExecRunner{}.Run(ctx, tool, nil, &out) }()
	child, err := strconv.Atoi(strings.TrimSpace(string(waitForFile(t, pidFile))))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v, want context.Canceled", err)
	}
	t.Logf("Run returned %v after the cancel", time.Since(start))
	if !gone(child) {
		_ = syscall.Kill(child, syscall.SIGKILL)
		t.Errorf("the tool's child %d outlived the cancel", child)
	}
}

func TestExecRunnerResults(t *testing.T) {
	ctx := context.Background()
	var out bytes.Buffer
	if err := (ExecRunner{}).Run(ctx, fakeTool(t, "tool", "echo hello; echo ignored >&2\n"), nil, &out); err != nil || out.String() != "hello\n" {
		t.Errorf("a tool that works: %v, %q", err, out.String())
	}
	if err := (ExecRunner{}).Run(ctx, fakeTool(t, "tool", "echo hello\n"), nil, nil); err != nil {
		t.Errorf("stdout dropped: %v", err)
	}

	err := ExecRunner{}.Run(ctx, fakeTool(t, "tool", "echo '/secret/path: Invalid data' >&2\nexit 3\n"), []string{"-x"}, nil)
	var re *RunError
	if !errors.As(err, &re) || !errors.Is(err, ErrToolFailed) {
		t.Fatalf("a tool that fails: %v (%T), want a *RunError", err, err)
	}
	if re.Tool != "tool" || re.Status != "exit status 3" || !strings.Contains(re.Stderr, "Invalid data") {
		t.Errorf("%+v", re)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("the error text %q quotes the tool", err)
	}

	// Diagnostics are bounded.
	err = ExecRunner{}.Run(ctx, fakeTool(t, "tool", "head -c 1000000 /dev/zero | tr '\\0' x >&2\nexit 1\n"), nil, nil)
	if !errors.As(err, &re) || len(re.Stderr) != maxStderr {
		t.Errorf("a chatty tool: %v, %d bytes kept", err, len(re.Stderr))
	}

	err = ExecRunner{}.Run(ctx, filepath.Join(t.TempDir(), "missing"), nil, nil)
	if err == nil || errors.As(err, &re) {
		t.Errorf("a missing tool: %v, want an error that is no RunError", err)
	}
}

// TestEncodeCancel cancels a real encode at its first progress report:
// ffmpeg is gone when Encode returns, and so are its files.
func TestEncodeCancel(t *testing.T) {
	tools := realTools(t)
	dir := t.TempDir()
	path := clip(t, dir, "a.mp4", join(picture(20, 640, 360, "25"), tone(20),
		[]string{"-c:v", "mpeg4", "-q:v", "10", "-c:a", "aac"})...)
	src, err := tools.Analyze(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var canceled time.Time
	err = tools.Encode(ctx, src, Ladder(src), out, func(p Progress) {
		if canceled.IsZero() {
			canceled = time.Now()
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Encode: %v, want context.Canceled", err)
	}
	t.Logf("Encode returned %v after the cancel", time.Since(canceled))
	if left, _ := os.ReadDir(out); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if pids := processesWith(t, out); len(pids) > 0 {
		t.Errorf("still running: %v", pids)
	}
}

// processesWith returns the processes whose command line mentions s.
func processesWith(t *testing.T, s string) []int {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil || len(dirs) == 0 {
		t.Skip("no procfs")
	}
	var pids []int
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil || !bytes.Contains(b, []byte(s)) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		if pid != os.Getpid() && !gone(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}
