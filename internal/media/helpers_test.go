package media

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/media/mediatest"
)

// realTools returns Tools using the installed ffmpeg and ffprobe,
// skipping the test without them (failing it under CI=true).
func realTools(t testing.TB) *Tools {
	t.Helper()
	ffmpeg, ffprobe := mediatest.Tools(t)
	tools, err := New(Config{FFmpeg: ffmpeg, FFprobe: ffprobe})
	if err != nil {
		t.Fatal(err)
	}
	return tools
}

// clip makes dir/name with ffmpeg from args (inputs and output options)
// and returns its path.
func clip(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	mediatest.FFmpeg(t, append(args, "file:"+path)...)
	return path
}

// lavfi inputs: a moving test picture and a tone.
func picture(seconds float64, w, h int, rate string) []string {
	return []string{"-f", "lavfi", "-i", "testsrc2=duration=" + ftoa(seconds) + ":size=" + strconv.Itoa(w) + "x" + strconv.Itoa(h) + ":rate=" + rate}
}

func tone(seconds float64) []string {
	return []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=" + ftoa(seconds)}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func join(parts ...[]string) []string {
	var all []string
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

// ffprobe runs ffprobe with args and the file last, failing the test if it
// fails.
func ffprobe(t testing.TB, path string, args ...string) []byte {
	t.Helper()
	_, bin := mediatest.Tools(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(append([]string{"-v", "error"}, args...), "file:"+path)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// probed is what the tests check of a file's streams.
type probed struct {
	Streams []struct {
		CodecType    string `json:"codec_type"`
		CodecName    string `json:"codec_name"`
		Profile      string `json:"profile"`
		PixFmt       string `json:"pix_fmt"`
		FieldOrder   string `json:"field_order"`
		Width        int    `json:"width"`
		Height       int    `json:"height"`
		Duration     string `json:"duration"`
		StartTime    string `json:"start_time"`
		AvgFrameRate string `json:"avg_frame_rate"`
		Channels     int    `json:"channels"`
		SideDataList []struct {
			Rotation float64 `json:"rotation"`
		} `json:"side_data_list"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
		Tags     map[string]string
	} `json:"format"`
	Packets []struct {
		StreamIndex int    `json:"stream_index"`
		PtsTime     string `json:"pts_time"`
		Flags       string `json:"flags"`
	} `json:"packets"`
}

func probeStreams(t testing.TB, path string) probed {
	t.Helper()
	var p probed
	if err := json.Unmarshal(ffprobe(t, path, "-print_format", "json", "-show_streams", "-show_format"), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// probeWithPackets is probeStreams with the packets' times and flags, in
// one ffprobe run (each costs a quarter second of loading libraries).
func probeWithPackets(t testing.TB, path string) probed {
	t.Helper()
	var p probed
	out := ffprobe(t, path, "-print_format", "json", "-show_streams", "-show_format", "-show_entries", "packet=stream_index,pts_time,flags")
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// videoPackets returns the first video stream's packet times and
// keyframe flags, in file order.
func (p probed) videoPackets(t testing.TB) (pts []float64, key []bool) {
	t.Helper()
	vi, ok := p.stream("video")
	if !ok {
		t.Fatal("no video stream")
	}
	for _, pk := range p.Packets {
		if pk.StreamIndex != vi {
			continue
		}
		f, err := strconv.ParseFloat(pk.PtsTime, 64)
		if err != nil {
			t.Fatalf("packet time %q", pk.PtsTime)
		}
		pts = append(pts, f)
		key = append(key, strings.HasPrefix(pk.Flags, "K"))
	}
	return pts, key
}

// stream returns the first stream of the type, and whether there is one.
func (p probed) stream(kind string) (int, bool) {
	for i, s := range p.Streams {
		if s.CodecType == kind {
			return i, true
		}
	}
	return -1, false
}

// videoDuration is the video stream's duration, or the file's.
func (p probed) videoDuration() float64 {
	if i, ok := p.stream("video"); ok {
		if d := seconds(p.Streams[i].Duration); d > 0 {
			return d
		}
	}
	return seconds(p.Format.Duration)
}

// writeFile writes b to path and returns path.
func writeFile(t testing.TB, path string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func near(a, b, tolerance float64) bool { return math.Abs(a-b) <= tolerance }
