package media

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/reel-video/reel/internal/platform/probe"
)

// Source is what the ladder needs to know of an input file. Analyze fills
// it; tests may build one by hand.
type Source struct {
	Path string
	// Demuxer is the ffmpeg demuxer forced on the file, chosen from its
	// first bytes.
	Demuxer  string
	Duration float64 // seconds
	BitRate  int64   // the whole file's, bits per second; 0 when unknown

	VideoStream int    // ffmpeg's index of the video stream
	VideoCodec  string // ffmpeg's name: h264, vp9, mpeg2video...
	Profile     string // as ffprobe names it: "High", "High 10"...
	PixFmt      string // yuv420p, yuv420p10le...
	BitDepth    int    // bits per sample of the picture; 0 when unknown
	Interlaced  bool
	// Width and Height are the picture as displayed: rotation and
	// non-square pixels applied. A phone video stored 1920×1080 with a
	// rotation of 90° is 1080×1920 here.
	Width, Height int
	// FrameRate is the constant rate the renditions get: the source's
	// average rate, snapped to a standard rate when close to one, at most
	// 60.
	FrameRate Rational

	AudioStream   int    // ffmpeg's index of the audio stream; -1 when silent
	AudioCodec    string // "" when silent
	AudioChannels int
	AudioRate     int // samples per second

	// KeyframeInterval is the longest stretch in seconds between two
	// video keyframes (or from the last one to the end), and
	// StartsWithKeyframe whether the first video packet is one. Analyze
	// measures them only for a source that could be remuxed (H.264 8-bit
	// 4:2:0); elsewhere they stay zero.
	KeyframeInterval   float64
	StartsWithKeyframe bool
}

// Rational is a frame rate as ffmpeg writes it, e.g. 30000/1001.
type Rational struct{ Num, Den int }

// Float is r as a number; 0 for a zero denominator.
func (r Rational) Float() float64 {
	if r.Den == 0 {
		return 0
	}
	return float64(r.Num) / float64(r.Den)
}

func (r Rational) String() string { return strconv.Itoa(r.Num) + "/" + strconv.Itoa(r.Den) }

// demuxers maps the content type probe.Sniff gives to the ffmpeg demuxer
// forced on the file, so that ffmpeg reads it as the container sniffing
// saw and never probes its way into another demuxer (a playlist or concat
// file disguised as a video).
var demuxers = map[string]string{
	"video/mp4":        "mov",
	"video/quicktime":  "mov",
	"video/3gpp":       "mov",
	"video/3gpp2":      "mov",
	"video/webm":       "matroska",
	"video/x-matroska": "matroska",
	"video/x-msvideo":  "avi",
	"video/mp2t":       "mpegts",
	"video/ogg":        "ogg",
}

// sniffDemuxer picks the demuxer for the file at path from its first
// bytes.
func sniffDemuxer(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("media: %w", err)
	}
	defer f.Close()
	head := make([]byte, probe.SniffLen)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("media: %w", err)
	}
	ct, err := probe.Sniff(head[:n])
	if err != nil {
		return "", unsupported("not a video container reel accepts")
	}
	d, ok := demuxers[ct]
	if !ok {
		return "", unsupported("not a video container reel accepts")
	}
	return d, nil
}

// inputArgs are ffmpeg's and ffprobe's options for reading the source:
// its demuxer and no other (nested demuxers included), local files only.
func (s *Source) inputArgs() []string {
	return []string{"-f", s.Demuxer, "-format_whitelist", s.Demuxer, "-protocol_whitelist", "file", "-i", fileURL(s.Path)}
}

// fileURL names a local file to ffmpeg so that neither a colon nor a
// leading dash in the path is read as a protocol or an option.
func fileURL(path string) string { return "file:" + path }

// maxProbeOutput bounds ffprobe's JSON: a real file's is a few KiB.
const maxProbeOutput = 1 << 20

// Analyze describes the video at path: ffprobe reads its streams, and,
// when the source could be remuxed, its video packets for the keyframe
// spacing (a read of the whole file, but no decoding). A file that cannot
// be streamed is ErrUnsupported, wrapped; a tool that fails on it is a
// *RunError.
func (t *Tools) Analyze(ctx context.Context, path string) (Source, error) {
	demuxer, err := sniffDemuxer(path)
	if err != nil {
		return Source{}, err
	}
	s := Source{Path: path, Demuxer: demuxer}
	args := append([]string{"-v", "error"}, s.inputArgs()...)
	args = append(args, "-print_format", "json", "-show_format", "-show_streams")
	out, err := t.capture(ctx, t.ffprobe, args, maxProbeOutput)
	if err != nil {
		return Source{}, err
	}
	var doc probeDoc
	if err := json.Unmarshal(out, &doc); err != nil {
		return Source{}, unsupported("ffprobe output unreadable")
	}
	if err := doc.fill(&s); err != nil {
		return Source{}, err
	}
	if s.remuxable() {
		if err := t.scanKeyframes(ctx, &s); err != nil {
			return Source{}, err
		}
	}
	return s, nil
}

// capture runs a tool and returns what it printed, at most limit bytes; a
// tool printing more is killed and its run is an error.
func (t *Tools) capture(ctx context.Context, tool string, args []string, limit int) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &capWriter{limit: limit, onFull: cancel}
	err := t.run.Run(ctx, tool, args, w)
	if w.full {
		return nil, unsupported("ffprobe printed too much")
	}
	return w.buf.Bytes(), err
}

// probeDoc is the part of ffprobe's JSON that Analyze reads.
type probeDoc struct {
	Streams []struct {
		Index             int    `json:"index"`
		CodecType         string `json:"codec_type"`
		CodecName         string `json:"codec_name"`
		Profile           string `json:"profile"`
		PixFmt            string `json:"pix_fmt"`
		Width             int    `json:"width"`
		Height            int    `json:"height"`
		SampleAspectRatio string `json:"sample_aspect_ratio"`
		RFrameRate        string `json:"r_frame_rate"`
		AvgFrameRate      string `json:"avg_frame_rate"`
		FieldOrder        string `json:"field_order"`
		BitsPerRawSample  string `json:"bits_per_raw_sample"`
		Channels          int    `json:"channels"`
		SampleRate        string `json:"sample_rate"`
		Duration          string `json:"duration"`
		Disposition       struct {
			AttachedPic int `json:"attached_pic"`
		} `json:"disposition"`
		Tags         map[string]string `json:"tags"`
		SideDataList []struct {
			Rotation float64 `json:"rotation"`
		} `json:"side_data_list"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
		BitRate  string `json:"bit_rate"`
	} `json:"format"`
}

func (d *probeDoc) fill(s *Source) error {
	video := -1
	s.AudioStream = -1
	for i, st := range d.Streams {
		switch {
		case st.CodecType == "video" && st.Disposition.AttachedPic == 0 && video < 0:
			video = i // cover art is a one-frame "video" marked attached_pic
		case st.CodecType == "audio" && st.Channels > 0 && s.AudioStream < 0:
			s.AudioStream, s.AudioCodec, s.AudioChannels = st.Index, st.CodecName, st.Channels
			s.AudioRate, _ = strconv.Atoi(st.SampleRate)
		}
	}
	if video < 0 {
		return unsupported("no video stream")
	}
	v := d.Streams[video]
	if v.Width <= 0 || v.Height <= 0 || v.Width > maxDimension || v.Height > maxDimension {
		return unsupported("the video stream has no usable picture size")
	}
	s.VideoStream, s.VideoCodec, s.Profile, s.PixFmt = v.Index, v.CodecName, v.Profile, v.PixFmt
	s.BitDepth, _ = strconv.Atoi(v.BitsPerRawSample)
	s.Interlaced = v.FieldOrder != "" && v.FieldOrder != "progressive" && v.FieldOrder != "unknown"
	s.Width, s.Height = displaySize(v.Width, v.Height, parseRatio(v.SampleAspectRatio, ":"), rotation(v.SideDataList, v.Tags))
	s.FrameRate = outputRate(parseRatio(v.AvgFrameRate, "/"), parseRatio(v.RFrameRate, "/"))

	s.Duration = seconds(d.Format.Duration)
	if s.Duration == 0 {
		s.Duration = seconds(v.Duration)
	}
	if s.Duration == 0 {
		return unsupported("no duration")
	}
	if br, err := strconv.ParseInt(d.Format.BitRate, 10, 64); err == nil && br > 0 {
		s.BitRate = br
	}
	return nil
}

// maxDimension bounds the picture sides reel transcodes (8K is 7680).
const maxDimension = 16384

// rotation is the stream's rotation in degrees, from its display matrix
// or, as older files and tools have it, its rotate tag.
func rotation(side []struct {
	Rotation float64 `json:"rotation"`
}, tags map[string]string) int {
	for _, sd := range side {
		if sd.Rotation != 0 {
			return int(math.Round(sd.Rotation))
		}
	}
	if r, err := strconv.ParseFloat(tags["rotate"], 64); err == nil {
		return int(math.Round(r))
	}
	return 0
}

// displaySize is the picture size as shown: stretched by the sample
// aspect ratio (an anamorphic DVD's 720×576 shows 1024×576), then turned
// by a quarter turn's rotation.
func displaySize(w, h int, sar Rational, rot int) (int, int) {
	if f := sar.Float(); f > 0 && f != 1 && f >= 0.1 && f <= 10 {
		w = int(math.Round(float64(w) * f))
	}
	if ((rot%180)+180)%180 == 90 {
		w, h = h, w
	}
	return w, h
}

// parseRatio reads "30000/1001" or "16:15"; anything else is 0/0.
func parseRatio(s, sep string) Rational {
	a, b, ok := strings.Cut(s, sep)
	if !ok {
		return Rational{}
	}
	n, err1 := strconv.Atoi(a)
	d, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || n <= 0 || d <= 0 {
		return Rational{}
	}
	return Rational{n, d}
}

// standardRates are the frame rates a source's rate snaps to when within
// 1% of one: a phone's variable rate averages 29.87, which is 30.
var standardRates = []Rational{{24000, 1001}, {24, 1}, {25, 1}, {30000, 1001}, {30, 1}, {48, 1}, {50, 1}, {60000, 1001}, {60, 1}}

// maxRate is the highest frame rate of a rendition: faster sources are
// divided down (120 to 60, 100 to 50).
const maxRate = 60

// outputRate picks the constant frame rate of the renditions from the
// source's average rate (or, without one, its base rate): the base rate
// when it is a standard one and the average within 1% of it, else the
// standard rate nearest the average within 1%, else the average rounded.
func outputRate(avg, base Rational) Rational {
	r := avg
	if r.Float() <= 0 || r.Float() > 1000 {
		r = base
	}
	f := r.Float()
	if f <= 0 || f > 1000 {
		return Rational{25, 1}
	}
	if f > maxRate {
		k := int(math.Ceil(f / maxRate))
		r, f = Rational{r.Num, r.Den * k}, f/float64(k)
	}
	if slices.Contains(standardRates, base) && within(f, base.Float()) {
		return base
	}
	best, gap := Rational{}, math.Inf(1)
	for _, s := range standardRates {
		if d := math.Abs(f - s.Float()); within(f, s.Float()) && d < gap {
			best, gap = s, d
		}
	}
	if gap < math.Inf(1) {
		return best
	}
	if f < 1 {
		return Rational{1, 1}
	}
	return Rational{int(math.Round(f)), 1}
}

// within is whether f is within 1% of rate.
func within(f, rate float64) bool { return math.Abs(f-rate) <= rate/100 }

// seconds parses one of ffprobe's durations; absent ("N/A"), negative and
// non-finite durations are zero.
func seconds(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0
	}
	return f
}
