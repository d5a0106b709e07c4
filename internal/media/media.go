// Package media is everything in reel that runs ffmpeg and ffprobe: the
// Prober, which checks an upload is a video, describes it (reading the
// common containers' headers in Go where it can: parse.go) and cuts its
// poster (probe.go); and Tools, which turn it into what adaptive streaming
// serves: a ladder of H.264/AAC renditions, each one fragmented MP4 file
// that plays both in a plain <video src> (with seeking) and, addressed by
// byte ranges, from HLS playlists that reel writes itself; and a
// storyboard (a sprite sheet of thumbnails and a WebVTT file mapping times
// to tiles) for previews on the seek bar.
//
// It knows nothing of HTTP, users or storage: it reads a local file and
// writes local files. ffmpeg and ffprobe do the decoding and encoding;
// Go reads the results (the fMP4 index, the playlists).
//
// The steps, for one source:
//
//	src, _ := tools.Analyze(ctx, path)   // ffprobe: what it is
//	plan := PlanLadder(src)               // which rungs, and which goes first
//	tools.Encode(ctx, src, []Rung{plan.First}, dir, onProgress)
//	tools.Encode(ctx, src, plan.Rest, dir, onProgress)
//	ix, _ := IndexFile(filepath.Join(dir, rung.File()))
//	MediaPlaylist(rung.File(), ix); MasterPlaylist(variants)
//
// Uploads are hostile input to ffmpeg's demuxers, so every run forces the
// demuxer that sniffing the file's first bytes chose and allows no
// protocol but local files.
package media

import (
	"errors"
	"fmt"
	"os/exec"
)

// ErrNoTools is returned by New when ffmpeg or ffprobe cannot be found.
var ErrNoTools = errors.New("media: ffmpeg or ffprobe is not installed")

// ErrUnsupported is returned, wrapped with a reason that is safe to show a
// client, for a source that cannot be streamed: not a container reel
// accepts, no video stream, no picture size or no duration.
var ErrUnsupported = errors.New("media: the video cannot be streamed")

func unsupported(reason string) error { return fmt.Errorf("%w: %s", ErrUnsupported, reason) }

// Tools runs ffmpeg and ffprobe through a Runner. Its methods are safe for
// concurrent use; how many runs go on at once is the caller's business
// (the job queue's).
type Tools struct {
	ffmpeg, ffprobe string
	run             Runner
	preset          string
}

// Config says where the tools are and how to run them. Empty paths are
// looked up on PATH; a nil Runner is ExecRunner.
type Config struct {
	FFmpeg, FFprobe string
	Runner          Runner
	// Preset is libx264's preset for the ladder; empty means
	// DefaultPreset.
	Preset string
}

// DefaultPreset is libx264's preset for the ladder: it encodes a full
// 1080p ladder in real time on two cores with room to spare. veryfast
// makes files about a third smaller but needs nearly all of both cores;
// ultrafast saves CPU but not bytes (docs/benchmarks.md).
const DefaultPreset = "superfast"

// New returns Tools for cfg, or ErrNoTools when a tool is missing.
func New(cfg Config) (*Tools, error) {
	t := &Tools{ffmpeg: cfg.FFmpeg, ffprobe: cfg.FFprobe, run: cfg.Runner, preset: cfg.Preset}
	for _, p := range []struct {
		path *string
		name string
	}{{&t.ffmpeg, "ffmpeg"}, {&t.ffprobe, "ffprobe"}} {
		if *p.path != "" {
			continue
		}
		found, err := exec.LookPath(p.name)
		if err != nil { // including exec.ErrDot: never run a tool from the working directory
			return nil, fmt.Errorf("%w: %s", ErrNoTools, p.name)
		}
		*p.path = found
	}
	if t.run == nil {
		t.run = ExecRunner{}
	}
	if t.preset == "" {
		t.preset = DefaultPreset
	}
	return t, nil
}
