package media

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reel-video/reel/internal/media/mediatest"
)

func TestAnalyzeKeyframes(t *testing.T) {
	tools := realTools(t)
	dir := t.TempDir()
	h264 := []string{"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"}
	tests := []struct {
		name     string
		args     []string
		interval float64
		why      string
	}{
		{"a keyframe a second", join(picture(3, 160, 90, "25"), h264, []string{"-g", "25"}), 1, ""},
		{"keyframes 8 s apart", join(picture(9, 160, 90, "25"), h264, []string{"-g", "200"}), 8, "8.0 s apart"},
		{"one keyframe, then 7 s", join(picture(7, 160, 90, "25"), h264, []string{"-g", "1000"}), 7, "7.0 s apart"},
	}
	for _, tc := range tests {
		path := clip(t, dir, strings.ReplaceAll(tc.name, " ", "_")+".mp4", tc.args...)
		src, err := tools.Analyze(context.Background(), path)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !near(src.KeyframeInterval, tc.interval, 0.05) || !src.StartsWithKeyframe {
			t.Errorf("%s: keyframes %v s apart (first %v), want %v", tc.name, src.KeyframeInterval, src.StartsWithKeyframe, tc.interval)
		}
		if why := src.FastStart(); tc.why == "" && why != "" || !strings.Contains(why, tc.why) {
			t.Errorf("%s: FastStart %q, want %q", tc.name, why, tc.why)
		}
	}

	// Keyframes are not measured where no remux could follow.
	path := clip(t, dir, "mpeg4.mp4", join(picture(2, 160, 90, "25"), []string{"-c:v", "mpeg4"})...)
	src, err := tools.Analyze(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if src.KeyframeInterval != 0 || src.Demuxer != "mov" || src.VideoCodec != "mpeg4" || src.AudioStream != -1 {
		t.Errorf("%+v", src)
	}
}

// Real H.264 sources that must not be remuxed, and say why: the first
// rendition is then the lowest rung (PlanLadder, TestFastStart). Analyze
// only: no encoding.
func TestAnalyzeNoFastStart(t *testing.T) {
	tools := realTools(t)
	if !mediatest.HasEncoder(t, "libx264") {
		t.Skip("this ffmpeg has no libx264")
	}
	dir := t.TempDir()
	h264 := []string{"-c:v", "libx264", "-preset", "ultrafast", "-g", "25"}
	tests := []struct {
		name, file string
		encoders   []string
		args       []string
		why        string
	}{
		{"mp3 audio", "a.mkv", []string{"libmp3lame"}, join(picture(1, 160, 90, "25"), tone(1), h264, []string{"-pix_fmt", "yuv420p", "-c:a", "libmp3lame"}), "not AAC"},
		{"opus audio", "b.mkv", []string{"libopus"}, join(picture(1, 160, 90, "25"), tone(1), h264, []string{"-pix_fmt", "yuv420p", "-c:a", "libopus"}), "not AAC"},
		{"4:2:2", "c.mp4", nil, join(picture(1, 160, 90, "25"), h264, []string{"-pix_fmt", "yuv422p"}), "8-bit 4:2:0"},
		{"interlaced", "d.mp4", nil, join(picture(1, 160, 96, "25"), h264, []string{"-pix_fmt", "yuv420p", "-flags", "+ildct+ilme", "-x264-params", "tff=1"}), "interlaced"},
	}
	for _, tc := range tests {
		skip := false
		for _, enc := range tc.encoders {
			skip = skip || !mediatest.HasEncoder(t, enc)
		}
		if skip {
			t.Logf("%s: skipped, this ffmpeg lacks %v", tc.name, tc.encoders)
			continue
		}
		src, err := tools.Analyze(context.Background(), clip(t, dir, tc.file, tc.args...))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if src.VideoCodec != "h264" {
			t.Fatalf("%s: %+v", tc.name, src)
		}
		why := src.FastStart()
		if !strings.Contains(why, tc.why) || why == "" {
			t.Errorf("%s: FastStart %q, want %q", tc.name, why, tc.why)
		}
		if p := PlanLadder(src); p.First.Copy || p.First != Ladder(src)[0] {
			t.Errorf("%s: first rendition %+v, want the lowest rung", tc.name, p.First)
		}
	}
}

func TestAnalyzeRefuses(t *testing.T) {
	tools := realTools(t)
	dir := t.TempDir()
	text := filepath.Join(dir, "a.mp4")
	writeFile(t, text, []byte("#EXTM3U\n#EXT-X-ENDLIST\n"))
	audio := clip(t, dir, "a.m4a", join(tone(1), []string{"-c:a", "aac", "-f", "mp4"})...)
	good := clip(t, dir, "good.mp4", join(picture(1, 160, 90, "25"), []string{"-c:v", "mpeg4"})...)
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.mp4")
	writeFile(t, truncated, b[:len(b)/3])

	for name, path := range map[string]string{"a playlist": text, "audio only": audio} {
		if _, err := tools.Analyze(context.Background(), path); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v, want ErrUnsupported", name, err)
		}
	}
	if _, err := tools.Analyze(context.Background(), truncated); !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrToolFailed) {
		t.Errorf("truncated: %v, want ErrUnsupported or ErrToolFailed", err)
	}
	if _, err := tools.Analyze(context.Background(), filepath.Join(dir, "missing.mp4")); err == nil || errors.Is(err, ErrUnsupported) {
		t.Errorf("a missing file: %v, want the server's error", err)
	}
}

func TestNew(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := New(Config{}); !errors.Is(err, ErrNoTools) {
		t.Errorf("no tools on PATH: %v", err)
	}
	tools, err := New(Config{FFmpeg: "/x/ffmpeg", FFprobe: "/x/ffprobe"})
	if err != nil || tools.preset != DefaultPreset || tools.run == nil {
		t.Errorf("explicit paths: %+v, %v", tools, err)
	}
}
