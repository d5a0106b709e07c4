package media

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
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

// inputArgs are ffmpeg's and ffprobe's options for reading the source:
// its demuxer and no other, local files only.
func (s *Source) inputArgs() []string {
	return append(inputOptions(s.Demuxer), "-i", fileURL(s.Path))
}

// Analyze describes the video at path: ffprobe reads its streams, and,
// when the source could be remuxed, its video packets for the keyframe
// spacing (a read of the whole file, but no decoding). A file that cannot
// be streamed is ErrUnsupported, wrapped; a tool that fails on it is a
// *RunError.
func (t *Tools) Analyze(ctx context.Context, path string) (Source, error) {
	c, err := sniffFile(path)
	if errors.Is(err, ErrNotVideo) {
		return Source{}, unsupported("not a video container reel accepts")
	}
	if err != nil {
		return Source{}, err
	}
	s := Source{Path: path, Demuxer: c.demuxer}
	out, err := t.capture(ctx, t.ffprobe, probeArgs(c.demuxer, path), maxProbeOutput)
	if err != nil {
		return Source{}, err
	}
	var doc probeDoc
	if err := json.Unmarshal(out, &doc); err != nil {
		return Source{}, unsupported("ffprobe output unreadable")
	}
	if err := doc.fillSource(&s); err != nil {
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

// fillSource copies what the ladder needs of the first real video
// stream and the first audio stream with channels into s, or says why the
// source cannot be streamed.
func (d *probeDoc) fillSource(s *Source) error {
	s.AudioStream = -1
	for _, st := range d.Streams {
		if st.CodecType == "audio" && st.Channels > 0 {
			s.AudioStream, s.AudioCodec, s.AudioChannels = st.Index, st.CodecName, st.Channels
			s.AudioRate, _ = strconv.Atoi(st.SampleRate)
			break
		}
	}
	v := d.video()
	if v == nil {
		s.AudioStream, s.AudioCodec, s.AudioChannels, s.AudioRate = -1, "", 0, 0
		return unsupported("no video stream")
	}
	if v.Width <= 0 || v.Height <= 0 || v.Width > maxDimension || v.Height > maxDimension {
		return unsupported("the video stream has no usable picture size")
	}
	s.VideoStream, s.VideoCodec, s.Profile, s.PixFmt = v.Index, v.CodecName, v.Profile, v.PixFmt
	s.BitDepth, _ = strconv.Atoi(v.BitsPerRawSample)
	s.Interlaced = v.FieldOrder != "" && v.FieldOrder != "progressive" && v.FieldOrder != "unknown"
	s.Width, s.Height = displaySize(v.Width, v.Height, parseRatio(v.SampleAspectRatio, ":"), v.rotation())
	s.FrameRate = outputRate(parseRatio(v.AvgFrameRate, "/"), parseRatio(v.RFrameRate, "/"))

	s.Duration = d.duration(v)
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
