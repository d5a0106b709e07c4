//go:build unix

package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reel-video/reel/internal/media/mediatest"
)

// fakeTool writes an executable shell script standing in for ffprobe or
// ffmpeg. cp, in a process of its own, writes the file that is run: a
// parallel test forking while this process held it open for writing
// would make running it fail with "text file busy" (golang/go#22315).
func fakeTool(t *testing.T, name, script string) string {
	t.Helper()
	dir := t.TempDir()
	src, path := filepath.Join(dir, name+".src"), filepath.Join(dir, name)
	writeFile(t, src, []byte("#!/bin/sh\n"+script))
	if err := os.Chmod(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-p", src, path).CombinedOutput(); err != nil {
		t.Fatalf("cp %s: %v %s", name, err, out)
	}
	return path
}

// sleeper is a fake tool that starts a child which holds stdout and
// stderr open, writes the child's pid to pidFile and waits for it: what
// must die with the tool's process group on timeout.
func sleeper(t *testing.T, name, pidFile string) string {
	return fakeTool(t, name, fmt.Sprintf("sleep 60 &\necho $! > %s\nwait\n", pidFile))
}

// gone reports, within a second or two, whether the process pid has ended
// (exited or a zombie nobody reaped yet).
func gone(pid int) bool {
	for range 40 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			if _, err := os.Stat("/proc/self/stat"); err != nil { // no procfs
				return syscall.Kill(pid, 0) != nil
			}
			return true
		}
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func readPid(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// sniffable writes bytes that pass Sniff, for runs of fake tools.
func sniffable(t *testing.T) string {
	return writeFile(t, filepath.Join(t.TempDir(), "upload"), concat(ftyp("isom", "isom"), make([]byte, 4096)))
}

func TestProbeTimeoutKillsProcessGroup(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "pid")
	p := newProber(sleeper(t, "ffprobe", pidFile), "", 300*time.Millisecond)
	start := time.Now()
	_, err := p.Probe(t.Context(), sniffable(t))
	elapsed := time.Since(start)
	var te *ToolError
	if !errors.Is(err, ErrNotVideo) || !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &te) {
		t.Fatalf("Probe: %v; want ErrNotVideo, DeadlineExceeded and a *ToolError", err)
	}
	// The child holds the pipes: had only the script been killed, Wait
	// would have waited out waitDelay for them.
	if elapsed > waitDelay {
		t.Errorf("Probe took %v", elapsed)
	}
	if pid := readPid(t, pidFile); !gone(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("the tool's child %d outlived the timeout", pid)
	}
}

func TestPosterTimeoutKillsProcessGroup(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "pid")
	p := newProber("", sleeper(t, "ffmpeg", pidFile), 300*time.Millisecond)
	_, err := p.Poster(t.Context(), sniffable(t), Info{DurationSeconds: 2})
	if !errors.Is(err, ErrNoPoster) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Poster: %v; want ErrNoPoster and DeadlineExceeded", err)
	}
	if pid := readPid(t, pidFile); !gone(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("the tool's child %d outlived the timeout", pid)
	}
}

func TestProbeRealFileTimeout(t *testing.T) {
	t.Parallel()
	p := realProber(t, time.Nanosecond)
	p.parse = false // ffprobe, not the Go reader, must see the file
	_, err := p.Probe(t.Context(), mediatest.Video(t, "", 1, 64, 48))
	if !errors.Is(err, ErrNotVideo) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Probe: %v; want ErrNotVideo and DeadlineExceeded", err)
	}
}

// TestProbeCallerGone checks that a caller's cancelled context is
// reported as such, not as a file that is not a video.
func TestProbeCallerGone(t *testing.T) {
	t.Parallel()
	p := newProber(fakeTool(t, "ffprobe", "exec sleep 60\n"), "", time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := p.Probe(ctx, sniffable(t))
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrNotVideo) {
		t.Fatalf("Probe: %v; want the context's error alone", err)
	}

	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := p.Probe(cancelled, sniffable(t)); !errors.Is(err, context.Canceled) || errors.Is(err, ErrNotVideo) {
		t.Fatalf("Probe: %v; want context.Canceled alone", err)
	}
}

// TestProbeOutputBound checks that a tool printing without end is stopped
// at the output bound, long before the timeout.
func TestProbeOutputBound(t *testing.T) {
	t.Parallel()
	p := newProber(fakeTool(t, "ffprobe", "exec yes '{\"streams\":[]}'\n"), "", time.Minute)
	start := time.Now()
	_, err := p.Probe(t.Context(), sniffable(t))
	if !errors.Is(err, ErrNotVideo) || !strings.Contains(err.Error(), "too much") {
		t.Fatalf("Probe: %v; want ErrNotVideo for too much output", err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("took %v", elapsed)
	}
}

// TestProbeFakeOutputs drives Probe with canned ffprobe answers.
func TestProbeFakeOutputs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, script string
		wantErr      bool
	}{
		{"valid", `echo '{"streams":[{"codec_type":"video","codec_name":"h264","width":8,"height":6}],"format":{"duration":"1.5"}}'`, false},
		{"not json", `echo 'this is not json'`, true},
		{"exits 1 after printing", `echo '{"streams":[]}'; echo 'moov atom not found' >&2; exit 1`, true},
		{"killed by a signal", `kill -SEGV $$`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProber(fakeTool(t, "ffprobe", tt.script+"\n"), "", time.Minute)
			info, err := p.Probe(t.Context(), sniffable(t))
			if tt.wantErr {
				if !errors.Is(err, ErrNotVideo) {
					t.Fatalf("Probe = %+v, %v; want ErrNotVideo", info, err)
				}
				t.Logf("refused: %v (%+v)", err, err)
				return
			}
			want := Info{Container: "mp4", ContentType: "video/mp4", DurationSeconds: 1.5, Width: 8, Height: 6, VideoCodec: "h264"}
			if err != nil || info != want {
				t.Fatalf("Probe = %+v, %v; want %+v", info, err, want)
			}
		})
	}
}

// TestProbeToolWontStart checks that a broken installation is the
// server's error, not the uploader's.
func TestProbeToolWontStart(t *testing.T) {
	t.Parallel()
	notExec := filepath.Join(t.TempDir(), "ffprobe")
	writeFile(t, notExec, []byte("not a program"))
	p := newProber(notExec, "", time.Minute)
	if _, err := p.Probe(t.Context(), sniffable(t)); err == nil || errors.Is(err, ErrNotVideo) {
		t.Fatalf("Probe: %v; want an error that is not ErrNotVideo", err)
	}
}

// statField returns field n (1-based, as proc(5) counts) of the
// /proc/<pid>/stat line a fake tool saved to file.
func statField(t *testing.T, file string, n int) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name, which ends with the last ')'.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return fields[n-3]
}

// A run a request waits for (ffprobe), and what it forks, runs at a lower
// priority than reel, so a burst of them leaves reel the cores it needs.
func TestProbeRunsNiced(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc to read a priority from")
	}
	t.Parallel()
	out := filepath.Join(t.TempDir(), "stat")
	// The child waits a moment: the priority is lowered just after start.
	tool := fakeTool(t, "ffprobe", `sh -c 'sleep 0.3; cat /proc/$$/stat > `+out+`'`+"\nexit 1\n")
	p := newProber(tool, "", 0)
	p.parse = false
	_, _ = p.Probe(t.Context(), sniffable(t))
	if got := statField(t, out, 19); got != strconv.Itoa(foregroundNice) {
		t.Fatalf("the tool's child ran at nice %s, want %d", got, foregroundNice)
	}
}

// A run nobody waits for (ffmpeg cutting a poster), and what it forks,
// runs only on cores nothing else wants: SCHED_IDLE on Linux, bounded by
// the timeout in CPU time; elsewhere the lowest priority.
func TestPosterRunsInBackground(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc to read a priority from")
	}
	t.Parallel()
	dir := t.TempDir()
	stat, limit, group := filepath.Join(dir, "stat"), filepath.Join(dir, "limit"), filepath.Join(dir, "autogroup")
	// The tool forks once its policy is set (just after start), as
	// ffmpeg starts its threads: the child must inherit the policy and
	// the limit.
	tool := fakeTool(t, "ffmpeg", `sleep 0.3; sh -c 'cat /proc/$$/stat > `+stat+`; ulimit -t > `+limit+`; cat /proc/$$/autogroup > `+group+`'`+"\nexit 1\n")
	p := newProber("", tool, 3*time.Second)
	_, _ = p.Poster(t.Context(), sniffable(t), Info{DurationSeconds: 1})
	sid, err := unix.Getsid(0)
	if err != nil {
		t.Fatal(err)
	}
	if got := statField(t, stat, 6); got == strconv.Itoa(sid) {
		t.Fatalf("the tool's child ran in the test's session (%s), not one of its own", got)
	}
	if runtime.GOOS != "linux" {
		if got := statField(t, stat, 19); got != strconv.Itoa(backgroundNice) {
			t.Fatalf("the tool's child ran at nice %s, want %d", got, backgroundNice)
		}
		return
	}
	const schedIdle = "5"
	if got := statField(t, stat, 41); got != schedIdle {
		t.Fatalf("the tool's child ran under scheduling policy %s, want SCHED_IDLE (%s)", got, schedIdle)
	}
	b, err := os.ReadFile(limit)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "3" {
		t.Fatalf("the tool's child may use %s s of CPU, want 3", got)
	}
	// Where the kernel shares the CPU between sessions, the session
	// yields too.
	if on, _ := os.ReadFile("/proc/sys/kernel/sched_autogroup_enabled"); strings.TrimSpace(string(on)) == "1" {
		b, err := os.ReadFile(group)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("nice %d", backgroundNice); !strings.Contains(string(b), want) {
			t.Fatalf("the tool's autogroup is %q, want %s", strings.TrimSpace(string(b)), want)
		}
	}
}

// A poster run stopped for using its CPU time (here a tool that sends
// itself the kernel's signal for it, as the kernel does at RLIMIT_CPU)
// fails as a timeout, and says why.
func TestPosterOutOfCPU(t *testing.T) {
	if !cpuBounded {
		t.Skip("background runs are bounded by the clock here")
	}
	t.Parallel()
	p := newProber("", fakeTool(t, "ffmpeg", "kill -XCPU $$\nsleep 1\n"), time.Minute)
	_, err := p.Poster(t.Context(), sniffable(t), Info{DurationSeconds: 1})
	if !errors.Is(err, ErrNoPoster) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Poster: %v; want ErrNoPoster and DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "CPU time") {
		t.Fatalf("Poster: %v; want it to say the CPU time ran out", err)
	}
}

// A request's ffprobe never waits for a slot behind posters, which may
// wait long for an idle core.
func TestProbeDoesNotWaitForPosters(t *testing.T) {
	t.Parallel()
	p := newProber(fakeTool(t, "ffprobe", "exit 1\n"), "", time.Minute)
	p.parse = false
	for range cap(p.idleSlots) {
		p.idleSlots <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := p.Probe(ctx, sniffable(t)); !errors.Is(err, ErrNotVideo) {
		t.Fatalf("Probe with every poster slot taken: %v; want ErrNotVideo", err)
	}
}

// A poster is first the keyframe before its time; when ffmpeg finds none
// there (it exits without writing a frame), the first frame, decoding
// every frame.
func TestPosterFallsBackToFirstFrame(t *testing.T) {
	t.Parallel()
	argsLog := filepath.Join(t.TempDir(), "args")
	// Notes its arguments; writes a JPEG's first bytes to its output (the
	// last argument) unless asked for keyframes only.
	tool := fakeTool(t, "ffmpeg", `echo "$*" >> `+argsLog+`
case "$*" in *nokey*) exit 0 ;; esac
for a; do last=$a; done
printf '\377\330\377' > "${last#file:}"
`)
	p := newProber("", tool, time.Minute)
	jpg, err := p.Poster(t.Context(), sniffable(t), Info{DurationSeconds: 20})
	if err != nil {
		t.Fatalf("Poster: %v", err)
	}
	_ = os.Remove(jpg)
	b, err := os.ReadFile(argsLog)
	if err != nil {
		t.Fatal(err)
	}
	runs := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(runs) != 2 {
		t.Fatalf("ffmpeg ran %d times, want 2:\n%s", len(runs), b)
	}
	if !strings.Contains(runs[0], "-skip_frame nokey -noaccurate_seek -ss 2.000 ") {
		t.Errorf("first run does not ask for the keyframe before 2 s: %s", runs[0])
	}
	if strings.Contains(runs[1], "nokey") || !strings.Contains(runs[1], "-ss 0.000 ") {
		t.Errorf("second run does not decode from the first frame: %s", runs[1])
	}
}
