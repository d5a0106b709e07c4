// The Prober decides whether an uploaded file is a video reel accepts and
// records what it is: the container, sniffed from the file's first bytes,
// and duration, picture size and codecs, read from the headers of the
// common containers in Go or else from ffprobe. It also cuts a poster
// frame with ffmpeg. A typical upload (MP4 or WebM) thus starts one
// process, ffmpeg for the poster.
//
// Both tools are optional at run time, so that reel starts on a machine
// without them: Probe then falls back to sniffing alone and Poster reports
// ErrNoPoster.
//
// Uploads are hostile input to ffmpeg's demuxers, so every run forces the
// demuxer that sniffing chose, allows no other demuxer and no protocol but
// local files, bounds its output, and is killed with its whole process
// group when it outlasts the timeout.

package media

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"time"

	"github.com/reel-video/reel/internal/platform/group"
)

// Info is what reel records about a video.
type Info struct {
	// Container is a short name of the container: mp4, mov, 3gp, 3g2,
	// webm, matroska, avi, mpegts or ogg.
	Container string
	// ContentType is the container's media type, e.g. video/mp4,
	// video/webm, video/quicktime or video/x-matroska.
	ContentType string
	// DurationSeconds is zero when ffprobe is not available.
	DurationSeconds float64
	// Width and Height are the picture as displayed: a phone video shot
	// upright but stored sideways with a rotation reports its upright
	// size. Zero when ffprobe is not available.
	Width, Height int
	// VideoCodec and AudioCodec are ffmpeg's codec names (h264, hevc, vp9,
	// aac, opus...); AudioCodec is empty for a silent video, both are
	// empty when ffprobe is not available.
	VideoCodec, AudioCodec string
}

// ErrNotVideo is returned, wrapped with a reason that is safe to show a
// client, for any file that is not a video reel accepts. Callers map it to
// 415 Unsupported Media Type.
var ErrNotVideo = errors.New("media: not a video")

// ErrNoPoster is returned, possibly wrapped, when Poster cannot make a
// poster: ffmpeg is not installed, or it found no frame to cut. The video
// itself may still be fine.
var ErrNoPoster = errors.New("media: no poster")

// DefaultTimeout bounds one ffprobe or ffmpeg run when New is given no
// positive timeout. Both take well under a second on a sane file.
const DefaultTimeout = 30 * time.Second

const (
	// maxPosterSeconds and posterFraction place the poster frame: past a
	// fade-in, but near the start, where seeking is cheap.
	maxPosterSeconds = 5.0
	posterFraction   = 0.1
	// posterWidth is the widest poster; narrower videos keep their size.
	posterWidth = 1280
)

// Prober runs ffprobe and ffmpeg on uploaded files. Its methods are safe
// for concurrent use; runs beyond one per CPU wait for a free slot (under
// the caller's context, not the timeout).
type Prober struct {
	ffprobe, ffmpeg string // absolute paths; empty when not installed
	timeout         time.Duration
	// slots bounds how many foreground runs (ffprobe, which a request
	// waits for) go on at once, so that a burst of uploads queues rather
	// than overloading a small machine; idleSlots bounds the background
	// runs (ffmpeg cutting posters) apart, so that a request never waits
	// for a slot behind a poster that waits for an idle core.
	slots, idleSlots chan struct{}
	// frames are the poster frames waiting for a slot (batch.go).
	frames *group.Runner[frameJob, frameResult]
	// parse reads MP4 and Matroska headers in Go before asking ffprobe
	// (see parse.go); tests turn it off to exercise ffprobe on any file.
	parse bool
	// TempDir is where Poster writes its JPEG files; empty means the
	// OS temp dir. Set it before use to a directory on the volume the
	// posters are stored on, so storing one is a rename, not a copy.
	TempDir string
}

// PosterPrefix starts the name of every file Poster writes, so that a
// sweep can find those a crashed process left behind.
const PosterPrefix = "reel-poster-"

// NewProber finds ffprobe and ffmpeg on PATH. It never fails: reel must start
// without them, so the caller checks Available and logs once. timeout
// bounds each tool run; zero or less means DefaultTimeout.
func NewProber(timeout time.Duration) *Prober {
	return newProber(lookPath("ffprobe"), lookPath("ffmpeg"), timeout)
}

func lookPath(name string) string {
	p, err := exec.LookPath(name)
	if err != nil { // including exec.ErrDot: never run a tool from the working directory
		return ""
	}
	return p
}

// newProber makes a Prober with explicit tool paths, so tests can use fake
// tools or none.
func newProber(ffprobe, ffmpeg string, timeout time.Duration) *Prober {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	p := &Prober{
		ffprobe:   ffprobe,
		ffmpeg:    ffmpeg,
		timeout:   timeout,
		slots:     make(chan struct{}, max(1, runtime.GOMAXPROCS(0))),
		idleSlots: make(chan struct{}, max(1, runtime.GOMAXPROCS(0))),
		parse:     true,
	}
	p.frames = p.frameRunner(maxFrameBatch)
	return p
}

// Available reports whether both ffprobe and ffmpeg were found. When only
// one was, it is still used: Probe needs ffprobe, Poster ffmpeg.
func (p *Prober) Available() bool { return p.ffprobe != "" && p.ffmpeg != "" }

// Probe checks that the file at path is a video reel accepts and describes
// it. The file must pass Sniff, and have a video stream that is not just
// cover art, with a positive size and duration: read in Go from the
// headers of MP4, QuickTime, 3GPP, WebM and Matroska files (parse.go),
// and by ffprobe for the other containers and whatever the Go reader
// does not fully understand. Any failure
// about the file's content is ErrNotVideo, wrapped; when ffprobe said why,
// the error is a *ToolError whose Stderr is for logs. A run that outlasts
// the timeout is ErrNotVideo and context.DeadlineExceeded both. When ctx
// ends first, Probe returns ctx's error.
//
// Without ffprobe, Probe only sniffs: Info has Container and ContentType
// and zero for the rest.
func (p *Prober) Probe(ctx context.Context, path string) (Info, error) {
	c, err := sniffFile(path)
	if err != nil {
		return Info{}, err
	}
	if p.parse {
		// The common containers are read in Go: no ffprobe to start.
		if info, ok := parseFile(path, c); ok {
			return info, nil
		}
	}
	info := Info{Container: c.name, ContentType: c.contentType}
	if p.ffprobe == "" {
		return info, nil
	}
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}

	out, err := p.run(ctx, p.ffprobe, probeArgs(c.demuxer, path), maxProbeOutput)
	if err != nil {
		return Info{}, toolFailure(ErrNotVideo, err, "ffprobe could not read the file")
	}
	var doc probeDoc
	if err := json.Unmarshal(out.stdout, &doc); err != nil {
		return Info{}, &ToolError{Tool: "ffprobe", Stderr: out.stderr, err: notVideo("ffprobe output unreadable")}
	}
	if err := doc.fillInfo(&info); err != nil {
		return Info{}, &ToolError{Tool: "ffprobe", Stderr: out.stderr, err: err}
	}
	return info, nil
}

// fillInfo copies the first real video stream, the first audio stream and
// the duration into info, or says why the file is not a video.
func (d *probeDoc) fillInfo(info *Info) error {
	v := d.video()
	if v == nil {
		return notVideo("no video stream")
	}
	for _, s := range d.Streams {
		if s.CodecType == "audio" {
			info.AudioCodec = s.CodecName
			break
		}
	}
	if v.Width <= 0 || v.Height <= 0 {
		return notVideo("the video stream has no picture size")
	}
	info.VideoCodec = v.CodecName
	// Only the rotation: Info records the stored picture turned upright,
	// not stretched by its pixel aspect ratio.
	info.Width, info.Height = displaySize(v.Width, v.Height, Rational{}, v.rotation())
	info.DurationSeconds = d.duration(v)
	if info.DurationSeconds == 0 {
		return notVideo("no duration")
	}
	return nil
}

// Poster cuts one JPEG frame from the video at path, the last keyframe
// at or before a point a tenth of the way in but no later than 5 s (the
// first frame when there is none), at most 1280 pixels wide (narrower videos
// keep their size; the aspect ratio is kept), writes it to a new temporary
// file and returns its path; the caller removes it. info is what Probe
// returned for the file; only its duration is used.
//
// Without ffmpeg, or when ffmpeg finds no frame, Poster returns
// ErrNoPoster (wrapped, a *ToolError when ffmpeg said why). When ctx ends
// first, Poster returns ctx's error.
func (p *Prober) Poster(ctx context.Context, path string, info Info) (jpegPath string, err error) {
	if p.ffmpeg == "" {
		return "", fmt.Errorf("%w: ffmpeg is not installed", ErrNoPoster)
	}
	// Sniff again rather than trust info.Container: the demuxer forced on
	// ffmpeg must come from the bytes.
	c, err := sniffFile(path)
	if err != nil {
		if errors.Is(err, ErrNotVideo) {
			return "", fmt.Errorf("%w: %w", ErrNoPoster, err)
		}
		return "", err
	}
	f, err := os.CreateTemp(p.TempDir, PosterPrefix+"*.jpg")
	if err != nil {
		return "", fmt.Errorf("media: poster: %w", err)
	}
	out := f.Name()
	_ = f.Close()
	defer func() {
		if err != nil {
			_ = os.Remove(out)
		}
	}()

	at := min(info.DurationSeconds*posterFraction, maxPosterSeconds)
	if math.IsNaN(at) || at < 0 {
		at = 0
	}
	// First the keyframe at or before that time, which takes decoding one
	// frame: cutting the exact frame means decoding every frame from the
	// keyframe before it, up to a GOP's worth (a second or two of 4K from
	// a phone) for a picture nobody can tell apart. Then, when that finds
	// nothing (no frame flagged key, or the duration overstates the frames
	// there are: a truncated file, a lying header), the first frame,
	// decoding everything: the first frame is better than none.
	for _, j := range []frameJob{{at: at, keyOnly: true}, {at: 0}} {
		j.c, j.path, j.out = c, path, out
		ok, err := p.cutFrame(ctx, j)
		if err != nil {
			return "", err
		}
		if ok {
			return out, nil
		}
	}
	return "", fmt.Errorf("%w: ffmpeg decoded no frame", ErrNoPoster)
}
