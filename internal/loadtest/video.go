package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ErrNoFFmpeg means ffmpeg is not installed, so there is no video to upload.
var ErrNoFFmpeg = errors.New("ffmpeg not found on PATH: uploads are skipped (apt-get install ffmpeg)")

// MakeVideo makes the upload payload once: a 4-second 320×240 H.264 MP4 of
// about 300 KiB, a test pattern with noise so it does not compress to
// nothing. A real video, because the server probes what it is sent. It
// falls back to MPEG-4 Part 2 when ffmpeg lacks libx264.
func MakeVideo(ctx context.Context, dir string) ([]byte, error) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return nil, ErrNoFFmpeg
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out := filepath.Join(dir, "loadtest.mp4")
	var lastErr error
	for _, codec := range [][]string{
		{"-c:v", "libx264", "-preset", "veryfast", "-b:v", "600k", "-maxrate", "600k", "-bufsize", "600k"},
		{"-c:v", "mpeg4", "-b:v", "600k"},
	} {
		args := []string{"-nostdin", "-hide_banner", "-v", "error", "-y",
			"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "4", "-vf", "noise=alls=12:allf=t"}
		args = append(args, codec...)
		args = append(args, "-pix_fmt", "yuv420p", "-movflags", "+faststart", out)
		cmd := exec.CommandContext(ctx, ffmpeg, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			lastErr = fmt.Errorf("ffmpeg %s: %v: %s", codec[1], err, strings.TrimSpace(stderr.String()))
			continue
		}
		b, err := os.ReadFile(out)
		_ = os.Remove(out)
		if err != nil {
			return nil, fmt.Errorf("read generated video: %w", err)
		}
		return b, nil
	}
	return nil, lastErr
}
