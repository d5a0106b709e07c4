package mediatest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// fakeTB records Skip and Fatal instead of stopping, so that the
// behaviour without ffmpeg can be checked from inside a test.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                           {}
func (f *fakeTB) Skip(args ...any)                  { f.skipped = fmt.Sprint(args...) }
func (f *fakeTB) Fatal(args ...any)                 { f.failed = fmt.Sprint(args...) }
func (f *fakeTB) Fatalf(format string, args ...any) { f.failed = fmt.Sprintf(format, args...) }

func TestToolsMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())

	t.Setenv("CI", "")
	f := &fakeTB{TB: t}
	if ffmpeg, ffprobe := Tools(f); ffmpeg != "" || ffprobe != "" || f.failed != "" || !strings.Contains(f.skipped, "FFMPEG NOT INSTALLED") {
		t.Errorf("outside CI: %q %q, skipped %q, failed %q; want a loud skip", ffmpeg, ffprobe, f.skipped, f.failed)
	}

	t.Setenv("CI", "true")
	f = &fakeTB{TB: t}
	if _, _ = Tools(f); f.skipped != "" || !strings.Contains(f.failed, "CI") {
		t.Errorf("in CI: skipped %q, failed %q; want a failure", f.skipped, f.failed)
	}
}

func TestVideoArguments(t *testing.T) {
	for _, c := range [][3]int{{0, 64, 48}, {1, 63, 48}, {1, 64, 0}} {
		f := &fakeTB{TB: t}
		Video(f, t.TempDir(), c[0], c[1], c[2])
		if !strings.Contains(f.failed, "even") {
			t.Errorf("Video(%v): failed %q; want a failure", c, f.failed)
		}
	}
}

func TestVideo(t *testing.T) {
	_, ffprobe := Tools(t)
	dir := t.TempDir()
	a := Video(t, dir, 2, 320, 240)
	b := Video(t, dir, 1, 64, 48)
	if a == b || !strings.HasPrefix(a, dir) {
		t.Fatalf("paths %q and %q; want two files in %s", a, b, dir)
	}
	out, err := exec.Command(ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", a).Output()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
		} `json:"streams"`
		Format struct {
			FormatName string `json:"format_name"`
			Duration   string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Streams) != 2 || doc.Streams[0].CodecType != "video" || doc.Streams[0].Width != 320 ||
		doc.Streams[0].Height != 240 || doc.Streams[1].CodecType != "audio" ||
		!strings.Contains(doc.Format.FormatName, "mp4") || !strings.HasPrefix(doc.Format.Duration, "2.0") {
		t.Errorf("ffprobe says %s", out)
	}
	head := make([]byte, 8)
	f, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Read(head); err != nil || string(head[4:]) != "ftyp" {
		t.Errorf("file starts %q", head)
	}

	// With no dir, the file goes to a temporary directory of the test's.
	if c := Video(t, "", 1, 32, 32); !strings.HasPrefix(c, os.TempDir()) {
		t.Errorf("Video with no dir made %s", c)
	}
}
