package media

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/media/mediatest"
)

// ladderCase is a generated source and what its renditions must be.
type ladderCase struct {
	name     string
	encoders []string // skip the case when ffmpeg lacks one
	make     func(t *testing.T, dir string) string
	remux    bool     // the first rendition is a remux
	rungs    []string // the ladder: name=WxH
	display  [2]int   // the source as displayed
	audio    bool
	// interlaced: Analyze must find the source interlaced (and the
	// ladder then runs it through bwdif).
	interlaced bool
}

var ladderCases = []ladderCase{
	{
		name: "h264 aac mp4", encoders: []string{"libx264"}, remux: true, audio: true,
		make: func(t *testing.T, dir string) string {
			return clip(t, dir, "a.mp4", join(picture(6, 854, 480, "30"), tone(6),
				[]string{"-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac"})...)
		},
		rungs: []string{"240p=428x240", "360p=640x360", "480p=854x480"}, display: [2]int{854, 480},
	},
	{
		// ADTS audio, which MP4 cannot take as it is.
		name: "h264 aac mpeg-ts", encoders: []string{"libx264"}, remux: true, audio: true,
		make: func(t *testing.T, dir string) string {
			return clip(t, dir, "a.ts", join(picture(3, 320, 240, "25"), tone(3),
				[]string{"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mpegts"})...)
		},
		rungs: []string{"240p=320x240"}, display: [2]int{320, 240},
	},
	{
		name: "vp9 opus webm", encoders: []string{"libvpx-vp9", "libopus"}, audio: true,
		make: func(t *testing.T, dir string) string {
			return clip(t, dir, "a.webm", join(picture(3, 640, 360, "25"), tone(3),
				[]string{"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"})...)
		},
		rungs: []string{"240p=426x240", "360p=640x360"}, display: [2]int{640, 360},
	},
	{
		// Interlaced, with non-square pixels (a PAL DVD's 16:15) and an
		// MPEG-TS clock that does not start at zero.
		name: "mpeg2 mp2 ts interlaced anamorphic", audio: true,
		make: func(t *testing.T, dir string) string {
			return clip(t, dir, "a.ts", join(picture(3, 720, 576, "25"), tone(3),
				[]string{"-vf", "setfield=tff", "-c:v", "mpeg2video", "-flags", "+ildct+ilme", "-top", "1", "-aspect", "4:3", "-c:a", "mp2", "-f", "mpegts"})...)
		},
		interlaced: true,
		rungs:      []string{"240p=320x240", "360p=480x360", "480p=640x480"}, display: [2]int{768, 576},
	},
	{
		name: "no audio", encoders: []string{"libx264"}, remux: true,
		make: func(t *testing.T, dir string) string {
			return clip(t, dir, "a.mp4", join(picture(2, 426, 240, "25"),
				[]string{"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"})...)
		},
		rungs: []string{"240p=426x240"}, display: [2]int{426, 240},
	},
	{
		name: "portrait", encoders: []string{"libx264"}, remux: true, audio: true,
		make: func(t *testing.T, dir string) string {
			return clip(t, dir, "a.mp4", join(picture(2, 720, 1280, "25"), tone(2),
				[]string{"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac"})...)
		},
		rungs: []string{"240p=240x426", "360p=360x640", "480p=480x854", "720p=720x1280"}, display: [2]int{720, 1280},
	},
	{
		// Odd sides, which 4:2:0 cannot have, in 4:4:4 H.264 (a profile
		// browsers do not decode) in Matroska.
		name: "odd size h264 444 mkv", encoders: []string{"libx264"}, audio: true,
		make: func(t *testing.T, dir string) string {
			return clip(t, dir, "a.mkv", join(picture(2, 854, 480, "25"), tone(2),
				[]string{"-vf", "scale=853:479,setsar=1,format=yuv444p", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"})...)
		},
		rungs: []string{"240p=428x240", "360p=642x360"}, display: [2]int{853, 479},
	},
	{
		// A phone's upright video, stored sideways with a rotation.
		name: "rotation", encoders: []string{"libx264"}, remux: true, audio: true,
		make: func(t *testing.T, dir string) string {
			flat := clip(t, dir, "flat.mp4", join(picture(2, 640, 360, "30"), tone(2),
				[]string{"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac"})...)
			return clip(t, dir, "a.mp4", "-i", "file:"+flat, "-c", "copy", "-metadata:s:v:0", "rotate=90")
		},
		rungs: []string{"240p=240x426", "360p=360x640"}, display: [2]int{360, 640},
	},
	{
		// 30 fps for 2 s, then 15 fps: the renditions are 30 fps
		// throughout.
		name: "variable frame rate", encoders: []string{"libx264"}, remux: true,
		make: func(t *testing.T, dir string) string {
			return clip(t, dir, "a.mkv", "-filter_complex",
				"testsrc2=d=2:r=30:s=320x240[a];testsrc2=d=2:r=15:s=320x240[b];[a][b]concat=n=2",
				"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-fps_mode", "vfr")
		},
		rungs: []string{"240p=320x240"}, display: [2]int{320, 240},
	},
}

// TestLadder runs each generated source through the whole pipeline as the
// worker will: analyse, plan, first rendition, the rest, index, playlists;
// then ffprobe checks every rendition and ffmpeg plays the master
// playlist through.
func TestLadder(t *testing.T) {
	tools := realTools(t)
	for _, tc := range ladderCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, e := range tc.encoders {
				if !mediatest.HasEncoder(t, e) {
					t.Skipf("ffmpeg has no %s", e)
				}
			}
			dir := t.TempDir()
			path := tc.make(t, dir)
			out := filepath.Join(dir, "out")
			if err := os.Mkdir(out, 0o755); err != nil {
				t.Fatal(err)
			}
			runLadder(t, tools, tc, path, out)
		})
	}
}

func runLadder(t *testing.T, tools *Tools, tc ladderCase, path, out string) {
	ctx := context.Background()
	src, err := tools.Analyze(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if got := [2]int{src.Width, src.Height}; got != tc.display || src.Interlaced != tc.interlaced {
		t.Errorf("displayed %v, interlaced %v; want %v, %v", got, src.Interlaced, tc.display, tc.interlaced)
	}
	plan := PlanLadder(src)
	if plan.First.Copy != tc.remux {
		t.Fatalf("first rendition a remux: %v, want %v (%s; %+v)", plan.First.Copy, tc.remux, plan.NoRemux, src)
	}
	var ladder []Rung
	if !tc.remux {
		ladder = append(ladder, plan.First)
	}
	ladder = append(ladder, plan.Rest...)
	var names []string
	for _, r := range ladder {
		names = append(names, r.Name+"="+itoa(r.Width)+"x"+itoa(r.Height))
	}
	if !slices.Equal(names, tc.rungs) {
		t.Fatalf("ladder %v, want %v", names, tc.rungs)
	}

	var last Progress
	calls := 0
	for _, step := range [][]Rung{{plan.First}, plan.Rest} {
		if err := tools.Encode(ctx, src, step, out, func(p Progress) { last, calls = p, calls+1 }); err != nil {
			var re *RunError
			if errors.As(err, &re) {
				t.Fatalf("encode %v: %v\n%s", step, err, re.Stderr)
			}
			t.Fatalf("encode %v: %v", step, err)
		}
	}
	if calls == 0 || last.Percent != 100 {
		t.Errorf("progress: %d calls, last %+v; want a last call at 100%%", calls, last)
	}
	if left, _ := filepath.Glob(filepath.Join(out, "*"+partSuffix)); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}

	source := probeStreams(t, path)
	srcDuration := source.videoDuration()
	frame := 1 / src.FrameRate.Float()
	all := slices.Clone(ladder)
	if plan.First.Copy {
		all = append([]Rung{plan.First}, all...)
	}
	var variants []Variant
	var keys [][]float64
	for _, r := range all {
		file := filepath.Join(out, r.File())
		ix, err := IndexFile(file)
		if err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		ks := checkRendition(t, r, file, ix, tc, srcDuration, frame)
		if !r.Copy {
			keys = append(keys, ks)
		}
		pl, err := MediaPlaylist(r.File(), ix)
		if err != nil {
			t.Fatal(err)
		}
		checkMediaPlaylist(t, pl, r.File(), ix)
		writeFile(t, filepath.Join(out, r.Name+".m3u8"), pl)
		variants = append(variants, ix.Variant(r.Name+".m3u8"))
	}
	// Keyframes at the same times in every rung, every SegmentSeconds.
	for i, k := range keys {
		if !slices.EqualFunc(k, keys[0], func(a, b float64) bool { return near(a, b, 0.001) }) {
			t.Errorf("%s keyframes at %v, %s at %v", ladder[i].Name, k, ladder[0].Name, keys[0])
		}
		for j, at := range k {
			if want := float64(j * SegmentSeconds); !near(at, want, frame) {
				t.Errorf("%s keyframe %d at %v, want %v", ladder[i].Name, j, at, want)
			}
		}
	}
	master, err := MasterPlaylist(variants)
	if err != nil {
		t.Fatal(err)
	}
	checkMasterPlaylist(t, master, variants)
	writeFile(t, filepath.Join(out, "master.m3u8"), master)
	playHLS(t, filepath.Join(out, "master.m3u8"), len(variants), tc.audio, srcDuration)
}

// checkRendition checks one rendition file with ffprobe and its index,
// and returns the times of its keyframes.
func checkRendition(t *testing.T, r Rung, file string, ix *Index, tc ladderCase, srcDuration, frame float64) []float64 {
	t.Helper()
	p := probeWithPackets(t, file)
	vi, ok := p.stream("video")
	if !ok {
		t.Fatalf("%s: no video", r.Name)
	}
	v := p.Streams[vi]
	w, h := v.Width, v.Height
	for _, sd := range v.SideDataList {
		if int(math.Abs(sd.Rotation))%180 == 90 {
			w, h = h, w
		}
	}
	if v.CodecName != "h264" || v.PixFmt != "yuv420p" || w != r.Width || h != r.Height {
		t.Errorf("%s: %s %s %dx%d displayed, want h264 yuv420p %dx%d", r.Name, v.CodecName, v.PixFmt, w, h, r.Width, r.Height)
	}
	if !r.Copy && v.FieldOrder != "progressive" {
		t.Errorf("%s: field order %q, want progressive", r.Name, v.FieldOrder)
	}
	if ix.Width != r.Width || ix.Height != r.Height {
		t.Errorf("%s: index says %dx%d", r.Name, ix.Width, ix.Height)
	}
	if d := p.videoDuration(); !near(d, srcDuration, 2*frame+0.001) {
		t.Errorf("%s: video lasts %v, source %v", r.Name, d, srcDuration)
	}
	if !near(ix.Duration, srcDuration, 2*frame+0.001) {
		t.Errorf("%s: index says %v s, source %v", r.Name, ix.Duration, srcDuration)
	}
	ai, hasAudio := p.stream("audio")
	if hasAudio != tc.audio {
		t.Errorf("%s: audio %v, want %v", r.Name, hasAudio, tc.audio)
	}
	wantCodecs := "avc1."
	if hasAudio {
		if a := p.Streams[ai]; a.CodecName != "aac" || a.Profile != "LC" {
			t.Errorf("%s: audio %s %s, want aac LC", r.Name, a.CodecName, a.Profile)
		}
		if !strings.HasSuffix(ix.Codecs, ",mp4a.40.2") {
			t.Errorf("%s: codecs %q, want AAC-LC", r.Name, ix.Codecs)
		}
	} else if strings.Contains(ix.Codecs, ",") {
		t.Errorf("%s: codecs %q for a silent video", r.Name, ix.Codecs)
	}
	if !strings.HasPrefix(ix.Codecs, wantCodecs) || len(strings.Split(ix.Codecs, ",")[0]) != len("avc1.640028") {
		t.Errorf("%s: codecs %q", r.Name, ix.Codecs)
	}
	if len(p.Format.Tags) > 0 {
		for k := range p.Format.Tags {
			if k != "major_brand" && k != "minor_version" && k != "compatible_brands" && k != "encoder" {
				t.Errorf("%s: the source's metadata %q came along", r.Name, k)
			}
		}
	}
	checkCoverage(t, r.Name, ix)
	// Each segment starts with a keyframe (an encoded rung has one a
	// segment; a remux keeps the source's, perhaps several a segment).
	pts, key := p.videoPackets(t)
	var ks []float64
	for i := range pts {
		if key[i] {
			ks = append(ks, pts[i])
		}
	}
	if len(ks) == 0 {
		t.Fatalf("%s: no keyframe", r.Name)
	}
	if !r.Copy && len(ks) != len(ix.Segments) {
		t.Errorf("%s: %d keyframes, %d segments", r.Name, len(ks), len(ix.Segments))
	}
	at := ks[0]
	for i, s := range ix.Segments {
		if !slices.ContainsFunc(ks, func(k float64) bool { return near(k, at, 0.001) }) {
			t.Errorf("%s: segment %d starts at %v, where there is no keyframe (%v)", r.Name, i, at, ks)
		}
		at += s.Duration
	}
	if !r.Copy {
		checkConstantRate(t, r.Name, pts, frame)
	}
	return ks
}

// checkCoverage checks that the init segment and the segments cover the
// file exactly, in order.
func checkCoverage(t *testing.T, name string, ix *Index) {
	t.Helper()
	at := int64(0)
	for i, r := range append([]Range{ix.Init}, segmentRanges(ix)...) {
		if r.Offset != at || r.Length <= 0 {
			t.Errorf("%s: range %d is %d@%d, want it to start at %d", name, i, r.Length, r.Offset, at)
		}
		at = r.Offset + r.Length
	}
	if at != ix.Size {
		t.Errorf("%s: ranges end at %d of %d bytes", name, at, ix.Size)
	}
}

func segmentRanges(ix *Index) []Range {
	var rs []Range
	for _, s := range ix.Segments {
		rs = append(rs, s.Range)
	}
	return rs
}

// checkConstantRate checks that the frames are evenly spaced.
func checkConstantRate(t *testing.T, name string, pts []float64, frame float64) {
	t.Helper()
	s := slices.Clone(pts)
	slices.Sort(s)
	for i := 1; i < len(s); i++ {
		if d := s[i] - s[i-1]; !near(d, frame, 0.002) {
			t.Errorf("%s: frames %v and %v are %v s apart, want %v", name, s[i-1], s[i], d, frame)
			return
		}
	}
}

// playHLS has ffmpeg read the master playlist and decode every stream of
// every variant to the end.
func playHLS(t *testing.T, master string, variants int, audio bool, duration float64) {
	t.Helper()
	ffmpeg, _ := mediatest.Tools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-v", "error", "-xerror", "-i", master, "-map", "0", "-f", "null", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg could not play the master playlist: %v\n%s", err, stderr.String())
	}
	// ffprobe sees a program per variant, each with its streams.
	p := probeStreams(t, master)
	want := variants
	if audio {
		want *= 2
	}
	if len(p.Streams) != want {
		t.Errorf("the master playlist has %d streams, want %d", len(p.Streams), want)
	}
	if d := seconds(p.Format.Duration); !near(d, duration, 0.1) {
		t.Errorf("the master playlist lasts %v, want %v", d, duration)
	}
}

// runnerFunc is a Runner from a function.
type runnerFunc func(ctx context.Context, name string, args []string, stdout io.Writer) error

func (f runnerFunc) Run(ctx context.Context, name string, args []string, stdout io.Writer) error {
	return f(ctx, name, args, stdout)
}

func TestEncodeRefuses(t *testing.T) {
	tools, err := New(Config{FFmpeg: "ffmpeg", FFprobe: "ffprobe", Runner: runnerFunc(func(context.Context, string, []string, io.Writer) error {
		t.Error("ffmpeg ran")
		return nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	src := Source{Width: 640, Height: 360, Duration: 1, FrameRate: Rational{25, 1}, AudioStream: -1}
	good := Ladder(src)[0]
	odd, dup, bad, remux := good, good, good, good
	odd.Name, odd.Width = "odd", 427
	bad.Name = "../240p"
	remux.Name, remux.Copy = "source", true
	for _, rungs := range [][]Rung{{good, dup}, {odd}, {bad}, {remux, good}} {
		if err := tools.Encode(context.Background(), src, rungs, t.TempDir(), nil); err == nil {
			t.Errorf("%+v accepted", rungs)
		}
	}
}

// TestEncodeFailureLeavesNothing has ffmpeg write its files and fail.
func TestEncodeFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	fail := &RunError{Tool: "ffmpeg", Status: "exit status 1"}
	written := 0
	tools, err := New(Config{FFmpeg: "ffmpeg", FFprobe: "ffprobe", Runner: runnerFunc(func(_ context.Context, _ string, args []string, stdout io.Writer) error {
		for _, a := range args {
			if p, ok := strings.CutPrefix(a, "file:"+dir); ok {
				writeFile(t, dir+p, []byte("partial"))
				written++
			}
		}
		stdout.Write([]byte("out_time_us=500000\nprogress=continue\n"))
		return fail
	})})
	if err != nil {
		t.Fatal(err)
	}
	src := Source{Path: "/in.mp4", Demuxer: "mov", Width: 640, Height: 360, Duration: 1, FrameRate: Rational{25, 1}, AudioStream: 1, AudioChannels: 6, AudioRate: 44100}
	var got []Progress
	err = tools.Encode(context.Background(), src, Ladder(src), dir, func(p Progress) { got = append(got, p) })
	if !errors.Is(err, fail) {
		t.Errorf("Encode: %v, want the runner's error", err)
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 || written != 2 {
		t.Errorf("left behind: %v of %d written", left, written)
	}
	if len(got) != 1 || got[0].Percent != 50 {
		t.Errorf("progress %+v", got)
	}
}
