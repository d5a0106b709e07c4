package media

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/reel-video/reel/internal/platform/group"
)

// Poster frames are cut in batches, because starting ffmpeg (loading its
// shared libraries) costs far more CPU than decoding one frame. Frames
// wait while the tool slots are busy, and whoever gets a slot cuts every
// queued frame (up to maxFrameBatch) in one run with one input and one
// output per frame (group.Runner); a lone upload still starts at once.
// When a batch fails (one unreadable file fails the whole run), each of
// its frames is cut again on its own, so one bad file costs the others
// only time.
const maxFrameBatch = 8

// frameJob is one frame to cut: the frame at second at of the video at
// path, to the JPEG file out. keyOnly cuts the last keyframe at or before
// at instead, decoding that one frame (see Poster).
type frameJob struct {
	c       container
	path    string
	at      float64
	keyOnly bool
	out     string
}

type frameResult struct {
	ok  bool // false: ffmpeg ran but decoded no frame there
	err error
}

// frameRunner cuts frames in batches of up to most, holding p's slots
// for background runs.
func (p *Prober) frameRunner(most int) *group.Runner[frameJob, frameResult] {
	return group.New(p.idleSlots, most, p.cutBatch)
}

// cutFrame writes the frame j asks for to j.out. It reports false when
// ffmpeg succeeded but wrote no JPEG, which it does when seeking lands
// past the last frame, or when keyframes only were asked for and none
// was found. Once a batch holds the frame the caller
// waits for it even when ctx ends (a run is bounded by the Prober's
// timeout), so that no ffmpeg writes to out after cutFrame returned.
func (p *Prober) cutFrame(ctx context.Context, j frameJob) (bool, error) {
	r, err := p.frames.Do(ctx, j)
	if err != nil {
		return false, err
	}
	if r.err != nil {
		return false, r.err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return r.ok, nil
}

// cutBatch runs ffmpeg once for the batch, in the background under the
// Prober's timeout (runHeld: the Runner holds the slot), and answers every
// job.
func (p *Prober) cutBatch(ctx context.Context, batch []frameJob) []frameResult {
	var args []string
	// One thread for each decoder, encoder and filter graph: by default
	// ffmpeg starts threads per core for each of them, which one frame
	// each cannot use and which cost CPU to start (decision 0010).
	args = append(args, "-nostdin", "-hide_banner", "-v", "error", "-y", "-filter_threads", "1")
	for _, j := range batch {
		if j.keyOnly {
			// Decode keyframes only, and seek to the one at or before
			// the time rather than decode forward from it to the exact
			// frame (which, with keyframes only, would land on the next
			// keyframe, or on none).
			args = append(args, "-skip_frame", "nokey", "-noaccurate_seek")
		}
		args = append(args, "-ss", strconv.FormatFloat(j.at, 'f', 3, 64), "-threads", "1")
		args = append(args, inputOptions(j.c.demuxer)...)
		args = append(args, "-i", fileURL(j.path))
	}
	for i, j := range batch {
		args = append(args,
			// V, not v: the first video stream that is not cover art,
			// the one Probe described.
			"-map", strconv.Itoa(i)+":V:0",
			"-frames:v", "1",
			// A keyframe before the time asked for comes out of the
			// seek with a negative timestamp, which ffmpeg would drop
			// rather than encode: count time from the frame.
			"-vf", fmt.Sprintf("setpts=PTS-STARTPTS,scale='min(%d,iw)':-2", posterWidth),
			"-q:v", "3", "-threads", "1",
			"-f", "image2", "-c:v", "mjpeg", "-update", "1",
			fileURL(j.out))
	}
	_, err := p.runHeld(ctx, p.ffmpeg, args, 0, true)
	results := make([]frameResult, len(batch))
	for i, j := range batch {
		switch {
		case err != nil && len(batch) > 1:
			// Which file failed the run is unknown: each on its own.
			results[i] = p.cutBatch(ctx, batch[i:i+1])[0]
		case err != nil:
			results[i] = frameResult{err: toolFailure(ErrNoPoster, err, "ffmpeg could not cut a frame")}
		default:
			ok, err := isJPEG(j.out)
			results[i] = frameResult{ok: ok, err: err}
		}
	}
	return results
}

// isJPEG reports whether the file at path starts like a JPEG.
func isJPEG(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("media: poster: %w", err)
	}
	defer func() { _ = f.Close() }()
	head := make([]byte, 3)
	n, _ := f.Read(head)
	return n == 3 && head[0] == 0xff && head[1] == 0xd8 && head[2] == 0xff, nil
}
