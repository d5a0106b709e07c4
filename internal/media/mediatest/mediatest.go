// Package mediatest makes small real videos with ffmpeg, so that tests can
// upload files that ffprobe accepts rather than bytes that merely look
// like a video.
//
// Without ffmpeg and ffprobe on PATH the tests that need them are skipped
// with a loud notice, except under CI=true, where they fail: CI must not
// pass by skipping the video half of the tests.
package mediatest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// notInstalled is the skip message. It is shouted because a skipped run
// leaves every video upload path untested.
const notInstalled = "FFMPEG NOT INSTALLED: video tests SKIPPED (apt-get install ffmpeg)"

// runTimeout bounds one ffmpeg run, so that a hung encoder fails the test
// rather than the whole test binary's timeout.
const runTimeout = 2 * time.Minute

// Tools returns the paths of ffmpeg and ffprobe. When either is missing it
// skips the test, or fails it when env CI is true.
func Tools(t testing.TB) (ffmpeg, ffprobe string) {
	t.Helper()
	ffmpeg, err1 := exec.LookPath("ffmpeg")
	ffprobe, err2 := exec.LookPath("ffprobe")
	if err1 == nil && err2 == nil {
		return ffmpeg, ffprobe
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal("ffmpeg/ffprobe not found on PATH and CI is set: install ffmpeg (.ci/run does)")
		return "", ""
	}
	t.Skip(notInstalled)
	return "", ""
}

// FFmpeg runs ffmpeg with args (after -nostdin -hide_banner -v error -y),
// failing the test with ffmpeg's diagnostics if it fails. It skips or
// fails like Tools when ffmpeg is missing.
func FFmpeg(t testing.TB, args ...string) {
	t.Helper()
	ffmpeg, _ := Tools(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffmpeg, append([]string{"-nostdin", "-hide_banner", "-v", "error", "-y"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
}

// HasEncoder reports whether ffmpeg has the named encoder (libx264,
// libvpx-vp9, libtheora...), which depends on how it was built. It skips
// or fails like Tools when ffmpeg is missing.
func HasEncoder(t testing.TB, name string) bool {
	t.Helper()
	ffmpeg, _ := Tools(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-encoders").Output()
	if err != nil {
		t.Fatalf("ffmpeg -encoders: %v", err)
	}
	for line := range strings.Lines(string(out)) {
		// " V....D libx264   libx264 H.264 / AVC ..."
		if f := strings.Fields(line); len(f) >= 2 && f[1] == name {
			return true
		}
	}
	return false
}

// Video makes a real MP4 in dir (t.TempDir() when dir is empty) and
// returns its path: seconds long, w×h pixels at 25 fps, H.264 (MPEG-4
// Part 2 if this ffmpeg lacks libx264) with an AAC sine tone. w and h must
// be even, as 4:2:0 video requires. Each call encodes afresh; a second or
// two at a small size takes a fraction of a second.
func Video(t testing.TB, dir string, seconds int, w, h int) string {
	t.Helper()
	if seconds < 1 || w < 2 || h < 2 || w%2 != 0 || h%2 != 0 {
		t.Fatalf("mediatest.Video: want seconds >= 1 and even w, h >= 2; got %d s, %dx%d", seconds, w, h)
		return ""
	}
	Tools(t)
	if dir == "" {
		dir = t.TempDir()
	}
	f, err := os.CreateTemp(dir, fmt.Sprintf("video-%dx%d-%ds-*.mp4", w, h, seconds))
	if err != nil {
		t.Fatal(err)
	}
	path := f.Name()
	_ = f.Close()
	video := []string{"-c:v", "libx264", "-preset", "ultrafast"}
	if !HasEncoder(t, "libx264") {
		video = []string{"-c:v", "mpeg4", "-q:v", "5"}
	}
	args := []string{
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc=duration=%d:size=%dx%d:rate=25", seconds, w, h),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:duration=%d", seconds),
	}
	args = append(args, video...)
	args = append(args, "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
		"-movflags", "+faststart", "-f", "mp4", "file:"+path)
	FFmpeg(t, args...)
	return path
}
