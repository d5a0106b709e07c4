package media

import (
	"math"
	"strconv"
)

// What every ffmpeg and ffprobe run on an upload shares: how the file is
// named and opened, and how ffprobe's JSON is read, for Probe (is it a
// video, and what) and Analyze (what the ladder needs) alike.

// inputOptions are ffprobe's and ffmpeg's options for reading an upload:
// the demuxer sniffing chose and no other (nested demuxers, such as a
// subtitle track's, included), and local files only (no network, no
// playlists pulling in other files).
func inputOptions(demuxer string) []string {
	return []string{"-f", demuxer, "-format_whitelist", demuxer, "-protocol_whitelist", "file"}
}

// fileURL names a local file to ffmpeg so that neither a colon nor a
// leading dash in the path is read as a protocol or an option.
func fileURL(path string) string { return "file:" + path }

// maxProbeOutput bounds ffprobe's JSON: a real file's is a few KiB, and
// a crafted one with thousands of streams or huge tags must not make
// reel buffer without limit.
const maxProbeOutput = 1 << 20

// probeArgs are ffprobe's arguments for the streams and format of the
// file at path, read with demuxer.
func probeArgs(demuxer, path string) []string {
	args := append([]string{"-v", "error"}, inputOptions(demuxer)...)
	return append(args, "-i", fileURL(path), "-print_format", "json", "-show_format", "-show_streams")
}

// probeDoc is the part of ffprobe's JSON (probeArgs) that reel reads.
type probeDoc struct {
	Streams []probeStream `json:"streams"`
	Format  struct {
		Duration string `json:"duration"`
		BitRate  string `json:"bit_rate"`
	} `json:"format"`
}

type probeStream struct {
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
}

// video returns the first video stream that is not cover art (a
// one-frame "video" marked attached_pic, which does not make an audio
// file a video), or nil.
func (d *probeDoc) video() *probeStream {
	for i := range d.Streams {
		if s := &d.Streams[i]; s.CodecType == "video" && s.Disposition.AttachedPic == 0 {
			return s
		}
	}
	return nil
}

// duration is the file's duration or else the video stream's; 0 when
// neither is known.
func (d *probeDoc) duration(v *probeStream) float64 {
	if f := seconds(d.Format.Duration); f > 0 {
		return f
	}
	return seconds(v.Duration)
}

// rotation is the stream's rotation in degrees, from its display matrix
// or, as older files and tools have it, its rotate tag.
func (s *probeStream) rotation() int {
	for _, sd := range s.SideDataList {
		if sd.Rotation != 0 {
			return int(math.Round(sd.Rotation))
		}
	}
	if r, err := strconv.ParseFloat(s.Tags["rotate"], 64); err == nil {
		return int(math.Round(r))
	}
	return 0
}

// seconds parses one of ffprobe's durations; absent ("N/A"), negative and
// non-finite durations are zero.
func seconds(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0
	}
	return f
}
