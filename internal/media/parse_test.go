package media

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/reel-video/reel/internal/media/mediatest"
)

// The Go reader agrees with ffprobe on every container it reads, and
// leaves the others (and what it does not understand) to ffprobe.
func TestParseAgreesWithFFprobe(t *testing.T) {
	t.Parallel()
	p := realProber(t, 0)
	p.parse = false // p is the reference: ffprobe alone
	dir := t.TempDir()
	tests := []struct {
		name     string
		make     func(t *testing.T) string
		encoders []string
		parsed   bool // read in Go; false: left to ffprobe
	}{
		{"mp4 h264 aac", func(t *testing.T) string { return mediatest.Video(t, dir, 2, 320, 240) }, []string{"libx264"}, true},
		{"mp4 faststart", func(t *testing.T) string {
			return clip(t, dir, "fast.mp4", join(picture2s, tone2s, []string{"-c:v", "mpeg4", "-c:a", "aac", "-movflags", "+faststart"})...)
		}, nil, true},
		{"webm vp9 opus", func(t *testing.T) string {
			return clip(t, dir, "a.webm", join(picture2s, tone2s, []string{"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"})...)
		}, []string{"libvpx-vp9", "libopus"}, true},
		{"webm vp8 vorbis", func(t *testing.T) string {
			return clip(t, dir, "b.webm", join(picture2s, tone2s, []string{"-c:v", "libvpx", "-deadline", "realtime", "-c:a", "libvorbis"})...)
		}, []string{"libvpx", "libvorbis"}, true},
		{"matroska mpeg4 aac", func(t *testing.T) string {
			return clip(t, dir, "a.mkv", join(picture2s, tone2s, []string{"-c:v", "mpeg4", "-c:a", "aac"})...)
		}, nil, true},
		{"matroska h264 mp3", func(t *testing.T) string {
			return clip(t, dir, "b.mkv", join(picture2s, tone2s, []string{"-c:v", "libx264", "-preset", "ultrafast", "-c:a", "libmp3lame"})...)
		}, []string{"libx264", "libmp3lame"}, true},
		{"quicktime", func(t *testing.T) string {
			return clip(t, dir, "a.mov", join(picture2s, tone2s, []string{"-c:v", "mpeg4", "-c:a", "aac", "-f", "mov"})...)
		}, nil, true},
		{"3gp", func(t *testing.T) string {
			return clip(t, dir, "a.3gp", "-f", "lavfi", "-i", "testsrc=duration=2:size=176x144:rate=25",
				"-f", "lavfi", "-i", "sine=duration=2:sample_rate=8000", "-c:v", "mpeg4", "-c:a", "aac", "-f", "3gp")
		}, nil, true},
		{"silent", func(t *testing.T) string {
			return clip(t, dir, "silent.mp4", join(picture2s, []string{"-c:v", "mpeg4"})...)
		}, nil, true},
		{"rotated", func(t *testing.T) string {
			src := clip(t, dir, "unrotated.mp4", join(picture2s, []string{"-c:v", "mpeg4"})...)
			return clip(t, dir, "rotated.mp4", "-i", src, "-c", "copy", "-metadata:s:v:0", "rotate=90")
		}, nil, true},
		{"rotated half a turn", func(t *testing.T) string {
			src := clip(t, dir, "unrotated2.mp4", join(picture2s, []string{"-c:v", "mpeg4"})...)
			return clip(t, dir, "rotated180.mp4", "-i", src, "-c", "copy", "-metadata:s:v:0", "rotate=180")
		}, nil, true},
		{"cover art beside the video", func(t *testing.T) string {
			cover := clip(t, dir, "cover1.jpg", "-f", "lavfi", "-i", "testsrc=size=640x480", "-frames:v", "1")
			return clip(t, dir, "withcover.mkv", join(picture2s, tone2s, []string{"-attach", cover,
				"-metadata:s:t", "mimetype=image/jpeg", "-c:v", "mpeg4", "-c:a", "aac"})...)
		}, nil, true},
		{"fragmented mp4", func(t *testing.T) string {
			return clip(t, dir, "frag.mp4", join(picture2s, []string{"-c:v", "mpeg4", "-movflags", "frag_keyframe+empty_moov"})...)
		}, nil, false},
		{"avi", func(t *testing.T) string {
			return clip(t, dir, "a.avi", join(picture2s, tone2s, []string{"-c:v", "mpeg4", "-c:a", "pcm_s16le"})...)
		}, nil, false},
		{"mpeg-ts", func(t *testing.T) string {
			return clip(t, dir, "a.ts", join(picture2s, tone2s, []string{"-c:v", "mpeg2video", "-c:a", "mp2", "-f", "mpegts"})...)
		}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, e := range tt.encoders {
				if !mediatest.HasEncoder(t, e) {
					t.Skipf("this ffmpeg has no %s encoder", e)
				}
			}
			path := tt.make(t)
			c, err := sniffFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := parseFile(path, c)
			if ok != tt.parsed {
				t.Fatalf("read in Go: %v (%+v); want %v", ok, got, tt.parsed)
			}
			if !ok {
				return
			}
			want, err := p.Probe(t.Context(), path)
			if err != nil {
				t.Fatalf("ffprobe: %v", err)
			}
			if math.Abs(got.DurationSeconds-want.DurationSeconds) > 0.05 {
				t.Errorf("duration %v s, ffprobe %v s", got.DurationSeconds, want.DurationSeconds)
			}
			got.DurationSeconds = want.DurationSeconds
			if got != want {
				t.Errorf("Go reader: %+v\nffprobe:   %+v", got, want)
			}
		})
	}
}

// Whatever ffprobe refuses, the Go reader does not accept: it gives up
// and leaves the verdict to ffprobe.
func TestParseLeavesRefusalsToFFprobe(t *testing.T) {
	t.Parallel()
	mediatest.Tools(t)
	dir := t.TempDir()
	real, err := os.ReadFile(mediatest.Video(t, dir, 2, 320, 240))
	if err != nil {
		t.Fatal(err)
	}
	noise := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range noise {
		noise[i] = byte(rng.UintN(256))
	}
	files := map[string]string{
		"audio-only mp4": clip(t, dir, "audio.mp4", join(tone2s, []string{"-c:a", "aac", "-f", "mp4"})...),
		"audio with cover art (matroska)": func() string {
			cover := clip(t, dir, "cover3.jpg", "-f", "lavfi", "-i", "testsrc=size=320x240", "-frames:v", "1")
			return clip(t, dir, "cover.mka", join(tone2s, []string{"-attach", cover,
				"-metadata:s:t", "mimetype=image/jpeg", "-c:a", "aac", "-f", "matroska"})...)
		}(),
		"audio with cover art (mp4)": func() string {
			cover := clip(t, dir, "cover2.jpg", "-f", "lavfi", "-i", "testsrc=size=320x240", "-frames:v", "1")
			return clip(t, dir, "cover.mp4", join(tone2s, []string{"-i", cover, "-map", "0", "-map", "1",
				"-c:a", "aac", "-c:v", "copy", "-disposition:v:0", "attached_pic", "-f", "mp4"})...)
		}(),
		"noise behind a forged ftyp":         writeFile(t, filepath.Join(dir, "forged.mp4"), concat(ftyp("isom", "isom", "mp41"), noise)),
		"noise behind a forged EBML header":  writeFile(t, filepath.Join(dir, "forged.webm"), concat(ebml("webm", 1), noise)),
		"first KiB of a real mp4":            writeFile(t, filepath.Join(dir, "truncated.mp4"), real[:1024]),
		"ftyp and zeros":                     writeFile(t, filepath.Join(dir, "zeros.mp4"), concat(ftyp("isom", "isom"), make([]byte, 4096))),
		"EBML header of unknown size, zeros": writeFile(t, filepath.Join(dir, "zeros.webm"), concat(ebml("webm", 0), make([]byte, 4096))),
	}
	for name, path := range files {
		c, err := sniffFile(path)
		if err != nil {
			t.Fatalf("%s: sniff: %v", name, err)
		}
		if info, ok := parseFile(path, c); ok {
			t.Errorf("%s: read in Go as %+v; want it left to ffprobe", name, info)
		}
	}
}

// Damaged files never crash the Go reader, and what it accepts always has
// a picture2s size and a duration.
func TestParseDamagedFiles(t *testing.T) {
	t.Parallel()
	mediatest.Tools(t)
	dir := t.TempDir()
	srcs := []string{mediatest.Video(t, dir, 1, 64, 48)}
	if mediatest.HasEncoder(t, "libvpx") {
		srcs = append(srcs, clip(t, dir, "d.webm", "-f", "lavfi", "-i", "testsrc=duration=1:size=64x48:rate=25", "-c:v", "libvpx", "-deadline", "realtime"))
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, src := range srcs {
		good, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		c, err := sniffFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := parseFile(src, c); !ok {
			t.Fatalf("%s not read in Go", src)
		}
		try := func(b []byte) {
			path := writeFile(t, filepath.Join(dir, "damaged"), b)
			if info, ok := parseFile(path, c); ok && (info.Width <= 0 || info.Height <= 0 || !(info.DurationSeconds > 0) || info.VideoCodec == "") {
				t.Fatalf("accepted a damaged file as %+v", info)
			}
		}
		for n := 0; n < len(good); n += 1 + n/16 {
			try(good[:n])
		}
		for range 500 {
			b := append([]byte(nil), good...)
			for range 1 + rng.IntN(8) {
				i := rng.IntN(len(b))
				switch rng.IntN(3) {
				case 0:
					b[i] = byte(rng.UintN(256))
				case 1:
					b[i] = 0xff
				default:
					b[i] = 0
				}
			}
			try(b)
		}
	}
}

// BenchmarkProbe compares describing a small MP4 in Go with starting
// ffprobe for it (what each upload paid before).
func BenchmarkProbe(b *testing.B) {
	ffmpeg, ffprobe := mediatest.Tools(b)
	video := mediatest.Video(b, b.TempDir(), 4, 320, 240)
	for _, parse := range []bool{true, false} {
		name := "ffprobe"
		if parse {
			name = "go"
		}
		b.Run(name, func(b *testing.B) {
			p := newProber(ffprobe, ffmpeg, 0)
			p.parse = parse
			for b.Loop() {
				if _, err := p.Probe(b.Context(), video); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
