package media

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestPlanStoryboard(t *testing.T) {
	tests := []struct {
		name string
		src  Source
		want Storyboard
	}{
		{"short", Source{Duration: 7, Width: 320, Height: 180},
			Storyboard{Interval: 1, Tiles: 7, Columns: 7, Rows: 1, TileWidth: 160, TileHeight: 90, Duration: 7}},
		{"an hour", Source{Duration: 3600, Width: 1920, Height: 1080},
			Storyboard{Interval: 36, Tiles: 100, Columns: 10, Rows: 10, TileWidth: 160, TileHeight: 90, Duration: 3600}},
		{"just over 100 s", Source{Duration: 100.2, Width: 1920, Height: 1080},
			Storyboard{Interval: 2, Tiles: 50, Columns: 10, Rows: 5, TileWidth: 160, TileHeight: 90, Duration: 100.2}},
		{"portrait", Source{Duration: 30, Width: 1080, Height: 1920},
			Storyboard{Interval: 1, Tiles: 30, Columns: 10, Rows: 3, TileWidth: 160, TileHeight: 284, Duration: 30}},
		{"narrow", Source{Duration: 0.4, Width: 101, Height: 75},
			Storyboard{Interval: 1, Tiles: 1, Columns: 1, Rows: 1, TileWidth: 100, TileHeight: 74, Duration: 0.4}},
	}
	for _, tc := range tests {
		if got := PlanStoryboard(tc.src); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// vttCue is one cue read back from a storyboard's WebVTT.
type vttCue struct {
	from, to   float64
	uri        string
	x, y, w, h int
}

func parseVTT(t *testing.T, b []byte) []vttCue {
	t.Helper()
	blocks := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n\n")
	if blocks[0] != "WEBVTT" {
		t.Fatalf("header %q", blocks[0])
	}
	var cues []vttCue
	for _, blk := range blocks[1:] {
		lines := strings.Split(blk, "\n")
		from, to, ok := strings.Cut(lines[0], " --> ")
		if len(lines) != 2 || !ok {
			t.Fatalf("cue %q", blk)
		}
		uri, frag, ok := strings.Cut(lines[1], "#xywh=")
		f := strings.Split(frag, ",")
		if !ok || len(f) != 4 {
			t.Fatalf("cue text %q", lines[1])
		}
		c := vttCue{from: parseVTTTime(t, from), to: parseVTTTime(t, to), uri: uri}
		for i, p := range []*int{&c.x, &c.y, &c.w, &c.h} {
			n, err := strconv.Atoi(f[i])
			if err != nil {
				t.Fatalf("xywh %q", frag)
			}
			*p = n
		}
		cues = append(cues, c)
	}
	return cues
}

func parseVTTTime(t *testing.T, s string) float64 {
	t.Helper()
	var h, m, sec, ms int
	if n, err := fmt.Sscanf(s, "%02d:%02d:%02d.%03d", &h, &m, &sec, &ms); n != 4 || err != nil || len(s) != len("00:00:00.000") {
		t.Fatalf("time %q", s)
	}
	return float64(h*3600+m*60+sec) + float64(ms)/1000
}

func TestStoryboardVTT(t *testing.T) {
	sb := Storyboard{Interval: 36, Tiles: 100, Columns: 10, Rows: 10, TileWidth: 160, TileHeight: 90, Duration: 3599.5}
	b, err := sb.VTT("sprite.jpg")
	if err != nil {
		t.Fatal(err)
	}
	cues := parseVTT(t, b)
	if len(cues) != 100 {
		t.Fatalf("%d cues", len(cues))
	}
	checkCues(t, cues, sb, "sprite.jpg")
	if c := cues[99]; c.x != 1440 || c.y != 810 || c.to != 3599.5 {
		t.Errorf("last cue %+v", c)
	}
	if !strings.Contains(string(b), "\n00:36:00.000 --> 00:36:36.000\nsprite.jpg#xywh=0,540,160,90\n") {
		t.Errorf("cue 60 missing:\n%s", b)
	}
	if _, err := sb.VTT("../sprite.jpg"); err == nil {
		t.Error("a URI leaving the directory was accepted")
	}
}

// checkCues checks that the cues follow each other from 0 to the end and
// each names a tile inside the sheet, row by row.
func checkCues(t *testing.T, cues []vttCue, sb Storyboard, uri string) {
	t.Helper()
	at := 0.0
	for i, c := range cues {
		x, y := (i%sb.Columns)*sb.TileWidth, (i/sb.Columns)*sb.TileHeight
		if c.uri != uri || !near(c.from, at, 0.0005) || c.to <= c.from || c.x != x || c.y != y || c.w != sb.TileWidth || c.h != sb.TileHeight {
			t.Errorf("cue %d: %+v, want from %v at %d,%d", i, c, at, x, y)
		}
		at = c.to
	}
	if !near(at, sb.Duration, 0.0005) {
		t.Errorf("the cues end at %v, the video at %v", at, sb.Duration)
	}
}

func TestStoryboard(t *testing.T) {
	tools := realTools(t)
	dir := t.TempDir()
	path := clip(t, dir, "a.ts", join(picture(7, 320, 180, "25"), []string{"-c:v", "mpeg2video", "-f", "mpegts"})...)
	src, err := tools.Analyze(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	sprite := filepath.Join(dir, "sprite.jpg")
	sb, err := tools.Storyboard(context.Background(), src, sprite)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(sprite)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := jpeg.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != sb.Columns*sb.TileWidth || b.Dy() != sb.Rows*sb.TileHeight || sb.Tiles != 7 {
		t.Fatalf("sheet %v for %+v", b, sb)
	}
	// Every tile is a frame, none the black filler of a sheet with fewer
	// frames than tiles; and the picture moves from tile to tile.
	var prev float64
	for i := range sb.Tiles {
		r := image.Rect(i*sb.TileWidth, 0, (i+1)*sb.TileWidth, sb.TileHeight)
		l := luma(img, r)
		if l < 40 {
			t.Errorf("tile %d is black (mean luma %v)", i, l)
		}
		if i > 0 && l == prev {
			t.Errorf("tile %d is the same as tile %d", i, i-1)
		}
		prev = l
	}
	vtt, err := sb.VTT("sprite.jpg")
	if err != nil {
		t.Fatal(err)
	}
	checkCues(t, parseVTT(t, vtt), sb, "sprite.jpg")

	// A failure leaves no file.
	src.Path = filepath.Join(dir, "missing.ts")
	if _, err := tools.Storyboard(context.Background(), src, sprite); !errors.Is(err, ErrToolFailed) {
		t.Errorf("a missing source: %v", err)
	}
	if _, err := os.Stat(sprite); !os.IsNotExist(err) {
		t.Errorf("the sprite of a failed run: %v", err)
	}
}

// luma is the mean brightness of r in img.
func luma(img image.Image, r image.Rectangle) float64 {
	var sum, n float64
	for y := r.Min.Y; y < r.Max.Y; y += 2 {
		for x := r.Min.X; x < r.Max.X; x += 2 {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			sum += (0.299*float64(cr) + 0.587*float64(cg) + 0.114*float64(cb)) / 257
			n++
		}
	}
	return sum / n
}
