package media

import (
	"context"
	"encoding/json"
	"errors"
	"image"
	_ "image/jpeg" // for image.DecodeConfig
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/media/mediatest"
)

// realProber returns a Prober using the installed tools, skipping (or, in
// CI, failing) the test without them.
func realProber(t *testing.T, timeout time.Duration) *Prober {
	t.Helper()
	ffmpeg, ffprobe := mediatest.Tools(t)
	return newProber(ffprobe, ffmpeg, timeout)
}

// lavfi inputs: a 2 s, 320×240 test picture2s and a 2 s tone2s.
var (
	picture2s = picture(2, 320, 240, "25")
	tone2s    = tone(2)
)

func TestProbeVideos(t *testing.T) {
	t.Parallel()
	p := realProber(t, 0)
	dir := t.TempDir()
	tests := []struct {
		name     string
		make     func(t *testing.T) string
		encoders []string // skip the case when ffmpeg lacks one
		want     Info
	}{
		{"mp4 h264 aac", func(t *testing.T) string { return mediatest.Video(t, dir, 2, 320, 240) }, []string{"libx264"},
			Info{"mp4", "video/mp4", 2, 320, 240, "h264", "aac"}},
		{"webm vp9 opus", func(t *testing.T) string {
			return clip(t, dir, "a.webm", join(picture2s, tone2s, []string{"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"})...)
		}, []string{"libvpx-vp9", "libopus"}, Info{"webm", "video/webm", 2, 320, 240, "vp9", "opus"}},
		{"webm vp8 vorbis", func(t *testing.T) string {
			return clip(t, dir, "b.webm", join(picture2s, tone2s, []string{"-c:v", "libvpx", "-deadline", "realtime", "-c:a", "libvorbis"})...)
		}, []string{"libvpx", "libvorbis"}, Info{"webm", "video/webm", 2, 320, 240, "vp8", "vorbis"}},
		{"matroska mpeg4 aac", func(t *testing.T) string {
			return clip(t, dir, "a.mkv", join(picture2s, tone2s, []string{"-c:v", "mpeg4", "-c:a", "aac"})...)
		}, nil, Info{"matroska", "video/x-matroska", 2, 320, 240, "mpeg4", "aac"}},
		{"quicktime", func(t *testing.T) string {
			return clip(t, dir, "a.mov", join(picture2s, tone2s, []string{"-c:v", "mpeg4", "-c:a", "aac", "-f", "mov"})...)
		}, nil, Info{"mov", "video/quicktime", 2, 320, 240, "mpeg4", "aac"}},
		{"3gp", func(t *testing.T) string {
			return clip(t, dir, "a.3gp", "-f", "lavfi", "-i", "testsrc=duration=2:size=176x144:rate=25",
				"-f", "lavfi", "-i", "sine=duration=2:sample_rate=8000", "-c:v", "mpeg4", "-c:a", "aac", "-f", "3gp")
		}, nil, Info{"3gp", "video/3gpp", 2, 176, 144, "mpeg4", "aac"}},
		{"avi", func(t *testing.T) string {
			return clip(t, dir, "a.avi", join(picture2s, tone2s, []string{"-c:v", "mpeg4", "-c:a", "pcm_s16le"})...)
		}, nil, Info{"avi", "video/x-msvideo", 2, 320, 240, "mpeg4", "pcm_s16le"}},
		{"mpeg-ts", func(t *testing.T) string {
			return clip(t, dir, "a.ts", join(picture2s, tone2s, []string{"-c:v", "mpeg2video", "-c:a", "mp2", "-f", "mpegts"})...)
		}, nil, Info{"mpegts", "video/mp2t", 2, 320, 240, "mpeg2video", "mp2"}},
		{"ogg theora vorbis", func(t *testing.T) string {
			return clip(t, dir, "a.ogv", join(picture2s, tone2s, []string{"-c:v", "libtheora", "-c:a", "libvorbis", "-f", "ogg"})...)
		}, []string{"libtheora", "libvorbis"}, Info{"ogg", "video/ogg", 2, 320, 240, "theora", "vorbis"}},
		{"silent", func(t *testing.T) string {
			return clip(t, dir, "silent.mp4", join(picture2s, []string{"-c:v", "mpeg4"})...)
		}, nil, Info{"mp4", "video/mp4", 2, 320, 240, "mpeg4", ""}},
		{"rotated: upright size", func(t *testing.T) string {
			src := clip(t, dir, "unrotated.mp4", join(picture2s, []string{"-c:v", "mpeg4"})...)
			return clip(t, dir, "rotated.mp4", "-i", src, "-c", "copy", "-metadata:s:v:0", "rotate=90")
		}, nil, Info{"mp4", "video/mp4", 2, 240, 320, "mpeg4", ""}},
		{"cover art beside the video", func(t *testing.T) string {
			cover := clip(t, dir, "cover1.jpg", "-f", "lavfi", "-i", "testsrc=size=640x480", "-frames:v", "1")
			return clip(t, dir, "withcover.mkv", join(picture2s, tone2s, []string{"-attach", cover,
				"-metadata:s:t", "mimetype=image/jpeg", "-c:v", "mpeg4", "-c:a", "aac"})...)
		}, nil, Info{"matroska", "video/x-matroska", 2, 320, 240, "mpeg4", "aac"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, e := range tt.encoders {
				if !mediatest.HasEncoder(t, e) {
					t.Skipf("this ffmpeg has no %s encoder", e)
				}
			}
			got, err := p.Probe(t.Context(), tt.make(t))
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			if math.Abs(got.DurationSeconds-tt.want.DurationSeconds) > 0.1 {
				t.Errorf("duration %v s, want about %v s", got.DurationSeconds, tt.want.DurationSeconds)
			}
			got.DurationSeconds = tt.want.DurationSeconds
			if got != tt.want {
				t.Errorf("Probe = %+v\nwant    %+v", got, tt.want)
			}
		})
	}
}

func TestProbeRefuses(t *testing.T) {
	t.Parallel()
	p := realProber(t, 0)
	dir := t.TempDir()
	real := mediatest.Video(t, dir, 2, 320, 240)
	realBytes, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	noise := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range noise {
		noise[i] = byte(rng.UintN(256))
	}

	tests := []struct {
		name string
		make func(t *testing.T) string
		// ffprobe says the file is not a video, not Sniff: the error
		// carries ffprobe's diagnostics or the reason it gave.
		byFFprobe bool
	}{
		{"empty file", func(t *testing.T) string { return writeFile(t, filepath.Join(dir, "empty.mp4"), nil) }, false},
		{"text named .mp4", func(t *testing.T) string {
			return writeFile(t, filepath.Join(dir, "text.mp4"), []byte("just some text, honest\n"))
		}, false},
		{"jpeg", func(t *testing.T) string {
			return clip(t, dir, "picture2s.jpg", "-f", "lavfi", "-i", "testsrc=size=320x240", "-frames:v", "1")
		}, false},
		{"m4a audio", func(t *testing.T) string { return clip(t, dir, "audio.m4a", join(tone2s, []string{"-c:a", "aac"})...) }, false},
		{"ogg audio", func(t *testing.T) string {
			if !mediatest.HasEncoder(t, "libvorbis") {
				t.Skip("this ffmpeg has no libvorbis encoder")
			}
			return clip(t, dir, "audio.ogg", join(tone2s, []string{"-c:a", "libvorbis"})...)
		}, false},
		{"audio-only mp4", func(t *testing.T) string {
			return clip(t, dir, "audio.mp4", join(tone2s, []string{"-c:a", "aac", "-f", "mp4"})...)
		}, true},
		{"audio with cover art (mp4)", func(t *testing.T) string {
			cover := clip(t, dir, "cover2.jpg", "-f", "lavfi", "-i", "testsrc=size=320x240", "-frames:v", "1")
			return clip(t, dir, "cover.mp4", join(tone2s, []string{"-i", cover, "-map", "0", "-map", "1",
				"-c:a", "aac", "-c:v", "copy", "-disposition:v:0", "attached_pic", "-f", "mp4"})...)
		}, true},
		{"audio with cover art (matroska)", func(t *testing.T) string {
			cover := clip(t, dir, "cover3.jpg", "-f", "lavfi", "-i", "testsrc=size=320x240", "-frames:v", "1")
			return clip(t, dir, "cover.mka", join(tone2s, []string{"-attach", cover,
				"-metadata:s:t", "mimetype=image/jpeg", "-c:a", "aac", "-f", "matroska"})...)
		}, true},
		{"noise behind a forged ftyp", func(t *testing.T) string {
			return writeFile(t, filepath.Join(dir, "forged.mp4"), concat(ftyp("isom", "isom", "mp41"), noise))
		}, true},
		{"noise behind a forged EBML header", func(t *testing.T) string {
			return writeFile(t, filepath.Join(dir, "forged.webm"), concat(ebml("webm", 1), noise))
		}, true},
		{"first KiB of a real mp4", func(t *testing.T) string {
			return writeFile(t, filepath.Join(dir, "truncated.mp4"), realBytes[:1024])
		}, true},
		{"real mpeg-ts behind a forged ftyp", func(t *testing.T) string {
			// Probing by content, ffprobe would find the transport
			// stream; forcing the demuxer Sniff chose refuses the
			// disguise.
			ts := clip(t, dir, "inner.ts", join(picture2s, []string{"-c:v", "mpeg2video", "-f", "mpegts"})...)
			b, err := os.ReadFile(ts)
			if err != nil {
				t.Fatal(err)
			}
			return writeFile(t, filepath.Join(dir, "disguised.mp4"), concat(ftyp("isom", "isom"), b))
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.make(t)
			info, err := p.Probe(t.Context(), path)
			if !errors.Is(err, ErrNotVideo) {
				t.Fatalf("Probe = %+v, %v; want ErrNotVideo", info, err)
			}
			if info != (Info{}) {
				t.Errorf("Probe returned %+v with its error", info)
			}
			if strings.Contains(err.Error(), dir) {
				t.Errorf("error %q shows the server path", err)
			}
			head, _ := os.ReadFile(path)
			_, sniffErr := Sniff(head[:min(len(head), SniffLen)])
			if tt.byFFprobe != (sniffErr == nil) {
				t.Errorf("Sniff: %v; want it to pass: %v", sniffErr, tt.byFFprobe)
			}
			var te *ToolError
			if errors.As(err, &te) {
				if te.Tool != "ffprobe" {
					t.Errorf("ToolError.Tool = %q", te.Tool)
				}
				// The tool's words are for the log, never the client.
				if te.Stderr != "" && strings.Contains(err.Error(), strings.TrimSpace(te.Stderr)) {
					t.Errorf("error %q includes ffprobe's stderr", err)
				}
			}
			t.Logf("refused: %v", err)
		})
	}

	t.Run("ffprobe diagnostics kept for logs", func(t *testing.T) {
		path := writeFile(t, filepath.Join(dir, "forged2.mp4"), concat(ftyp("isom", "isom", "mp41"), noise))
		_, err := p.Probe(t.Context(), path)
		var te *ToolError
		if !errors.As(err, &te) || te.Stderr == "" || te.Status == "" {
			t.Fatalf("Probe: %#v; want a *ToolError with ffprobe's status and stderr", err)
		}
		if strings.Contains(err.Error(), te.Stderr) || strings.Contains(err.Error(), "forged2") {
			t.Errorf("error text %q leaks stderr %q", err, te.Stderr)
		}
	})

	t.Run("server-side errors are not ErrNotVideo", func(t *testing.T) {
		for _, path := range []string{filepath.Join(dir, "missing.mp4"), dir} {
			if _, err := p.Probe(t.Context(), path); err == nil || errors.Is(err, ErrNotVideo) {
				t.Errorf("Probe(%s) = %v; want an error that is not ErrNotVideo", path, err)
			}
		}
	})
}

func TestFillInfo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, json string
		want       Info // zero: ErrNotVideo
	}{
		{"stream duration when the format has none",
			`{"streams":[{"codec_type":"video","codec_name":"vp9","width":64,"height":48,"duration":"3.5"}],"format":{"duration":"N/A"}}`,
			Info{DurationSeconds: 3.5, Width: 64, Height: 48, VideoCodec: "vp9"}},
		{"rotation in side data",
			`{"streams":[{"codec_type":"video","codec_name":"h264","width":1920,"height":1080,"side_data_list":[{"side_data_type":"Display Matrix","rotation":-90}]}],"format":{"duration":"1"}}`,
			Info{DurationSeconds: 1, Width: 1080, Height: 1920, VideoCodec: "h264"}},
		{"rotation tag",
			`{"streams":[{"codec_type":"video","codec_name":"h264","width":1920,"height":1080,"tags":{"rotate":"270"}}],"format":{"duration":"1"}}`,
			Info{DurationSeconds: 1, Width: 1080, Height: 1920, VideoCodec: "h264"}},
		{"upside down keeps its size",
			`{"streams":[{"codec_type":"video","codec_name":"h264","width":1920,"height":1080,"side_data_list":[{"rotation":180}]}],"format":{"duration":"1"}}`,
			Info{DurationSeconds: 1, Width: 1920, Height: 1080, VideoCodec: "h264"}},
		{"first real video stream, first audio stream",
			`{"streams":[{"codec_type":"audio","codec_name":"aac"},{"codec_type":"video","codec_name":"png","width":600,"height":600,"disposition":{"attached_pic":1}},{"codec_type":"video","codec_name":"hevc","width":640,"height":360},{"codec_type":"audio","codec_name":"ac3"},{"codec_type":"video","codec_name":"h264","width":320,"height":180}],"format":{"duration":"10.25"}}`,
			Info{DurationSeconds: 10.25, Width: 640, Height: 360, VideoCodec: "hevc", AudioCodec: "aac"}},
		{"only cover art", `{"streams":[{"codec_type":"audio","codec_name":"mp3"},{"codec_type":"video","codec_name":"mjpeg","width":500,"height":500,"disposition":{"attached_pic":1}}],"format":{"duration":"200"}}`, Info{}},
		{"no streams", `{"streams":[],"format":{"duration":"2"}}`, Info{}},
		{"no duration", `{"streams":[{"codec_type":"video","codec_name":"h264","width":2,"height":2,"duration":"N/A"}],"format":{}}`, Info{}},
		{"zero duration", `{"streams":[{"codec_type":"video","codec_name":"h264","width":2,"height":2,"duration":"0"}],"format":{"duration":"0.000000"}}`, Info{}},
		{"infinite duration", `{"streams":[{"codec_type":"video","codec_name":"h264","width":2,"height":2}],"format":{"duration":"inf"}}`, Info{}},
		{"no picture2s size", `{"streams":[{"codec_type":"video","codec_name":"h264","width":0,"height":0}],"format":{"duration":"2"}}`, Info{}},
		{"subtitles and data only", `{"streams":[{"codec_type":"subtitle","codec_name":"mov_text"},{"codec_type":"data"}],"format":{"duration":"2"}}`, Info{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc probeDoc
			if err := json.Unmarshal([]byte(tt.json), &doc); err != nil {
				t.Fatal(err)
			}
			var got Info
			err := doc.fillInfo(&got)
			if tt.want == (Info{}) {
				if !errors.Is(err, ErrNotVideo) {
					t.Fatalf("fill = %+v, %v; want ErrNotVideo", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("fill = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestPoster(t *testing.T) {
	t.Parallel()
	p := realProber(t, 0)
	dir := t.TempDir()
	tests := []struct {
		name       string
		make       func(t *testing.T) string
		info       func(Info) Info // changes Probe's Info before Poster
		wantW      int
		wantH      int
		needsCodec string
	}{
		{"small mp4 keeps its size", func(t *testing.T) string { return mediatest.Video(t, dir, 2, 320, 240) }, nil, 320, 240, ""},
		{"wide video scaled to 1280", func(t *testing.T) string { return mediatest.Video(t, dir, 1, 1600, 900) }, nil, 1280, 720, ""},
		{"odd height after scaling stays even", func(t *testing.T) string { return mediatest.Video(t, dir, 1, 1920, 818) }, nil, 1280, 546, ""},
		{"rotated video upright", func(t *testing.T) string {
			src := clip(t, dir, "unrotated.mp4", join(picture2s, []string{"-c:v", "mpeg4"})...)
			return clip(t, dir, "rotated.mp4", "-i", src, "-c", "copy", "-metadata:s:v:0", "rotate=90")
		}, nil, 240, 320, ""},
		{"webm", func(t *testing.T) string {
			return clip(t, dir, "a.webm", join(picture2s, []string{"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"})...)
		}, nil, 320, 240, "libvpx-vp9"},
		{"duration overstated: falls back to the first frame", func(t *testing.T) string { return mediatest.Video(t, dir, 1, 320, 240) },
			func(i Info) Info { i.DurationSeconds = 3600; return i }, 320, 240, ""},
		{"no duration known: first frame", func(t *testing.T) string { return mediatest.Video(t, dir, 1, 320, 240) },
			func(Info) Info { return Info{} }, 320, 240, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needsCodec != "" && !mediatest.HasEncoder(t, tt.needsCodec) {
				t.Skipf("this ffmpeg has no %s encoder", tt.needsCodec)
			}
			path := tt.make(t)
			info, err := p.Probe(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			if tt.info != nil {
				info = tt.info(info)
			}
			jpg, err := p.Poster(t.Context(), path, info)
			if err != nil {
				t.Fatalf("Poster: %v", err)
			}
			t.Cleanup(func() { _ = os.Remove(jpg) })
			checkJPEG(t, jpg, tt.wantW, tt.wantH)
		})
	}

	t.Run("not a video", func(t *testing.T) {
		path := writeFile(t, filepath.Join(dir, "text.mp4"), []byte("not a video at all"))
		if jpg, err := p.Poster(t.Context(), path, Info{DurationSeconds: 2}); !errors.Is(err, ErrNoPoster) || !errors.Is(err, ErrNotVideo) {
			t.Fatalf("Poster = %q, %v; want ErrNoPoster and ErrNotVideo", jpg, err)
		}
	})
	t.Run("audio only", func(t *testing.T) {
		path := clip(t, dir, "audio.mp4", join(tone2s, []string{"-c:a", "aac", "-f", "mp4"})...)
		jpg, err := p.Poster(t.Context(), path, Info{DurationSeconds: 2})
		var te *ToolError
		if !errors.Is(err, ErrNoPoster) || !errors.As(err, &te) || te.Tool != "ffmpeg" {
			t.Fatalf("Poster = %q, %v; want ErrNoPoster from ffmpeg", jpg, err)
		}
	})
}

func checkJPEG(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	soi := make([]byte, 2)
	if _, err := f.Read(soi); err != nil || soi[0] != 0xff || soi[1] != 0xd8 {
		t.Fatalf("%s starts % x, not a JPEG SOI marker (%v)", path, soi, err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	cfg, format, err := image.DecodeConfig(f)
	if err != nil || format != "jpeg" {
		t.Fatalf("DecodeConfig = %q, %v", format, err)
	}
	if cfg.Width != w || cfg.Height != h {
		t.Errorf("poster is %dx%d, want %dx%d", cfg.Width, cfg.Height, w, h)
	}
}

// TestPosterCleansUp checks that a failed Poster leaves no temporary file
// behind. Not parallel: it points TMPDIR at a directory of its own.
func TestPosterCleansUp(t *testing.T) {
	p := realProber(t, 0)
	src := t.TempDir()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	path := clip(t, src, "audio.mp4", join(tone2s, []string{"-c:a", "aac", "-f", "mp4"})...)
	if _, err := p.Poster(t.Context(), path, Info{DurationSeconds: 2}); !errors.Is(err, ErrNoPoster) {
		t.Fatalf("Poster: %v; want ErrNoPoster", err)
	}
	video := mediatest.Video(t, src, 1, 64, 48)
	q := newProber(p.ffprobe, p.ffmpeg, time.Nanosecond)
	if _, err := q.Poster(t.Context(), video, Info{DurationSeconds: 1}); !errors.Is(err, ErrNoPoster) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Poster with no time: %v; want ErrNoPoster and DeadlineExceeded", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
}

// TestFallback checks reel without ffprobe and ffmpeg: Probe sniffs only,
// Poster has nothing to offer. It needs no tools, so it runs everywhere.
func TestFallback(t *testing.T) {
	t.Parallel()
	p := newProber("", "", 0)
	if p.Available() {
		t.Fatal("Available with no tools")
	}
	dir := t.TempDir()
	video := writeFile(t, filepath.Join(dir, "upload"), concat(ebml("webm", 1), make([]byte, 4096)))
	info, err := p.Probe(t.Context(), video)
	if want := (Info{Container: "webm", ContentType: "video/webm"}); err != nil || info != want {
		t.Errorf("Probe = %+v, %v; want %+v", info, err, want)
	}
	text := writeFile(t, filepath.Join(dir, "text.webm"), []byte("hello"))
	if _, err := p.Probe(t.Context(), text); !errors.Is(err, ErrNotVideo) {
		t.Errorf("Probe(text) = %v; want ErrNotVideo", err)
	}
	if jpg, err := p.Poster(t.Context(), video, info); !errors.Is(err, ErrNoPoster) || jpg != "" {
		t.Errorf("Poster = %q, %v; want ErrNoPoster", jpg, err)
	}
}

// TestNewProber checks the PATH lookup. Not parallel: it changes PATH.
func TestNewProber(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if p := NewProber(0); p.Available() || p.ffprobe != "" || p.ffmpeg != "" || p.timeout != DefaultTimeout {
		t.Errorf("NewProber with empty PATH: %+v", p)
	}

	// A tool in the working directory is not picked up by accident.
	wd := t.TempDir()
	writeFile(t, filepath.Join(wd, "ffprobe"), []byte("#!/bin/sh\n"))
	if err := os.Chmod(filepath.Join(wd, "ffprobe"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(wd)
	t.Setenv("PATH", ".")
	if p := NewProber(time.Second); p.ffprobe != "" || p.timeout != time.Second {
		t.Errorf("NewProber with PATH=.: %+v", p)
	}
}

// TestNewFindsTools checks NewProber against the installed tools.
func TestNewFindsTools(t *testing.T) {
	ffmpeg, ffprobe := mediatest.Tools(t)
	p := NewProber(0)
	if !p.Available() || p.ffmpeg != ffmpeg || p.ffprobe != ffprobe {
		t.Errorf("NewProber = %+v; want %s and %s", p, ffmpeg, ffprobe)
	}
}
