package media

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Rung is one rendition: a picture size and how to encode it, or a remux
// of the source (Copy).
type Rung struct {
	// Name names the rendition and its files: "360p" (the short side),
	// or "source" for the remux.
	Name string
	// Width and Height are the picture as displayed, both even.
	Width, Height int
	// Copy is a remux of the source: its streams copied, not encoded.
	Copy bool
	// CRF, MaxRate and BufSize are libx264's capped-CRF settings: the
	// quality asked for, and the peak video rate (bits/s) over a buffer
	// of BufSize bits that an easy scene leaves unspent and a hard one
	// may not exceed.
	CRF              int
	MaxRate, BufSize int
	// AudioRate is the AAC rate in bits/s.
	AudioRate int
	// Bandwidth estimates the rendition's peak rate in bits/s, video and
	// audio, before it exists; the master playlist gives the measured one
	// (Index.Variant).
	Bandwidth int64
}

// File is the name of the rung's fragmented MP4 file.
func (r Rung) File() string { return r.Name + ".mp4" }

// Short is the rung's short side: its height for a landscape picture,
// its width for a portrait one.
func (r Rung) Short() int { return min(r.Width, r.Height) }

// SourceRung is the name of the remux rendition.
const SourceRung = "source"

// ladder is the rungs by short side, with their peak video rates (for
// 30 fps; 50 and 60 fps get half as much again) and audio rates.
var ladder = []struct{ short, maxRate, audioRate int }{
	{240, 400_000, 64_000},
	{360, 800_000, 96_000},
	{480, 1_400_000, 128_000},
	{720, 2_800_000, 128_000},
	{1080, 5_000_000, 160_000},
}

const (
	// crf is libx264's constant rate factor for every rung: its default,
	// good to the eye at these sizes; the cap bounds the rate of hard
	// scenes.
	crf = 23
	// bufferSeconds is the VBV buffer in seconds of the peak rate: two,
	// half a segment, lets a scene cut spend more without letting a
	// segment's rate stray far above the cap.
	bufferSeconds = 2
	// highRate is the frame rate above which a rung gets half as many
	// bits again.
	highRate = 40
)

// Plan is the order in which a source's renditions are made.
type Plan struct {
	// First is made first, on its own, so that the video streams as soon
	// as possible: a remux of the source when it is already fit for it
	// (FastStart), else the lowest rung.
	First Rung
	// Rest is every other rung, made together by one ffmpeg run after
	// First: the full ladder when First is a remux, else the ladder above
	// the lowest rung. It may be empty. A remux's segments start at the
	// source's keyframes, not at the ladder's, so once the ladder is done
	// the master playlist should list the ladder alone.
	Rest []Rung
	// NoRemux says why First is not a remux, for logs.
	NoRemux string
}

// PlanLadder plans the renditions of s: the ladder's rungs whose short
// side is no longer than the source's (a source shorter than the lowest
// rung gets one rung at its own size), in the source's displayed
// orientation and aspect, and whether a remux goes first.
func PlanLadder(s Source) Plan {
	rungs := Ladder(s)
	var p Plan
	if why := s.FastStart(); why == "" {
		p.First = Rung{Name: SourceRung, Width: s.Width, Height: s.Height, Copy: true, Bandwidth: s.BitRate}
		p.Rest = rungs
	} else {
		p.First, p.Rest, p.NoRemux = rungs[0], rungs[1:], why
	}
	return p
}

// Ladder is the rungs for s, lowest first; never empty.
func Ladder(s Source) []Rung {
	w, h := max(s.Width, 2), max(s.Height, 2)
	short, long := min(w, h), max(w, h)
	fast := s.FrameRate.Float() > highRate
	var rungs []Rung
	for _, l := range ladder {
		if l.short > short {
			break
		}
		rungs = append(rungs, rung(l.short, long, short, l.maxRate, l.audioRate, w < h, fast))
	}
	if len(rungs) == 0 { // smaller than the lowest rung: one at its own size
		l := ladder[0]
		r := rung(even(float64(short), math.Floor), long, short, l.maxRate, l.audioRate, w < h, fast)
		rungs = append(rungs, r)
	}
	return rungs
}

// rung sizes a rung of short side s for a source of sides long and short
// and sets its rates.
func rung(s, long, short, maxRate, audioRate int, portrait, fast bool) Rung {
	l := even(float64(s)*float64(long)/float64(short), math.Round)
	if fast {
		maxRate += maxRate / 2
	}
	r := Rung{
		Name: fmt.Sprintf("%dp", s), Width: l, Height: s,
		CRF: crf, MaxRate: maxRate, BufSize: maxRate * bufferSeconds, AudioRate: audioRate,
		Bandwidth: int64(maxRate + audioRate),
	}
	if portrait {
		r.Width, r.Height = r.Height, r.Width
	}
	return r
}

// even rounds x to an even number of pixels, at least 2, as 4:2:0 video
// requires.
func even(x float64, round func(float64) float64) int {
	return max(2, int(round(x/2))*2)
}

// remuxProfiles are the H.264 profiles every browser decodes, as ffprobe
// names them: 8-bit 4:2:0, no Extended profile's data partitioning.
var remuxProfiles = []string{"Constrained Baseline", "Baseline", "Main", "High", "Progressive High", "Constrained High"}

// maxRemuxKeyframeInterval is the longest keyframe interval, in seconds,
// of a source that is remuxed: its segments start at its keyframes, and
// a player fetches a whole segment before it can show the first frame.
const maxRemuxKeyframeInterval = 6

// MayRemux reports whether a video of these codecs (ffmpeg's names, as a
// probe of the upload gives them) may have its first rendition remuxed:
// FastStart decides, once the stream's format and keyframes are known.
func MayRemux(videoCodec, audioCodec string) bool {
	return videoCodec == "h264" && (audioCodec == "" || audioCodec == "aac")
}

// remuxable is whether s's codecs could be copied as they are into a
// rendition every player plays; FastStart adds the keyframe spacing.
func (s *Source) remuxable() bool { return s.notRemuxable() == "" }

func (s *Source) notRemuxable() string {
	switch {
	case s.VideoCodec != "h264":
		return "the video is not H.264"
	case s.PixFmt != "yuv420p" && s.PixFmt != "yuvj420p", s.BitDepth > 8:
		return "the video is not 8-bit 4:2:0"
	case s.Profile != "" && !slices.Contains(remuxProfiles, s.Profile):
		return "the H.264 profile is " + strings.ToLower(s.Profile)
	case s.Interlaced:
		return "the video is interlaced"
	case s.AudioCodec != "" && s.AudioCodec != "aac":
		return "the audio is not AAC"
	}
	return ""
}

// FastStart says why s cannot be remuxed into its first rendition, or ""
// when it can: H.264 8-bit 4:2:0 in a profile browsers decode,
// progressive, with AAC or no audio, starting with a keyframe and with
// keyframes no more than 6 s apart (Analyze measures them).
func (s Source) FastStart() string {
	if why := s.notRemuxable(); why != "" {
		return why
	}
	switch {
	case s.KeyframeInterval == 0:
		return "the keyframes were not measured"
	case !s.StartsWithKeyframe:
		return "the video does not start with a keyframe"
	case s.KeyframeInterval > maxRemuxKeyframeInterval:
		return fmt.Sprintf("keyframes are up to %.1f s apart", s.KeyframeInterval)
	}
	return ""
}
