package media

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// SegmentSeconds is the length of a media segment: every rung has a
// keyframe, and so a fragment boundary, every SegmentSeconds of output,
// at the same frames in every rung, so that a player switching rungs
// lands on a keyframe.
const SegmentSeconds = 4

// remuxMinFragment is the shortest fragment of a remux, in microseconds:
// its fragments start at the source's keyframes, the first one at least
// this long after the last fragment's start (a phone's keyframe a second
// makes 3 s segments, one every 2 s makes 4 s ones).
const remuxMinFragment = 3_000_000

// fragmentFlags make each rendition one fragmented MP4 file (CMAF-like):
// an init segment (ftyp, moov with no samples) then a fragment (moof,
// mdat) at each keyframe, every one starting from its own moof.
//   - delay_moov writes the moov once the first fragment is known, with
//     an edit list: without one, each track would be made to start at 0
//     on its own, and the video (whose first frame B-frames delay by two)
//     would lag the audio.
//   - global_sidx indexes the fragments after the moov, so that a plain
//     <video src> seeks by range requests without reading the file up to
//     the point sought.
//   - skip_trailer leaves out the mfra at the end, so that the init
//     segment and the fragments cover the file (the sidx is part of the
//     first fragment).
const fragmentFlags = "+frag_keyframe+empty_moov+delay_moov+default_base_moof+global_sidx+skip_trailer"

// partSuffix marks a rendition file ffmpeg is still writing.
const partSuffix = ".part"

// Encode makes rungs from src into dir, each as dir/rung.File(), with one
// ffmpeg run: the source is decoded once and each rung scaled from it and
// encoded (H.264, AAC), or, for a Copy rung (which must come alone), its
// streams copied. onProgress, if not nil, is called about twice a second.
//
// The files appear only when all are complete; on failure none is left.
// When ctx ends, ffmpeg is killed and Encode returns ctx's error. A
// failure of ffmpeg is a *RunError.
func (t *Tools) Encode(ctx context.Context, src Source, rungs []Rung, dir string, onProgress func(Progress)) (err error) {
	if len(rungs) == 0 {
		return nil
	}
	if err := checkRungs(rungs); err != nil {
		return err
	}
	parts := make([]string, len(rungs))
	for i, r := range rungs {
		parts[i] = filepath.Join(dir, r.File()+partSuffix)
	}
	defer func() {
		if err != nil {
			for _, p := range parts {
				_ = os.Remove(p)
			}
		}
	}()
	args := append([]string{"-nostdin", "-hide_banner", "-v", "error", "-y"}, progressArgs...)
	args = append(args, src.inputArgs()...)
	if rungs[0].Copy {
		args = append(args, remuxArgs(src, parts[0])...)
	} else {
		args = append(args, t.ladderArgs(src, rungs, parts)...)
	}
	if err := t.run.Run(ctx, t.ffmpeg, args, newProgressWriter(src.Duration, onProgress)); err != nil {
		return err
	}
	for i, r := range rungs {
		if err := os.Rename(parts[i], filepath.Join(dir, r.File())); err != nil {
			return fmt.Errorf("media: %w", err)
		}
	}
	return nil
}

// checkRungs refuses what Encode cannot do: a remux beside other rungs,
// two rungs of one name, a name that is no plain file name.
func checkRungs(rungs []Rung) error {
	seen := map[string]bool{}
	for _, r := range rungs {
		switch {
		case r.Copy && len(rungs) > 1:
			return errors.New("media: a remux is made on its own")
		case !validName(r.Name):
			return fmt.Errorf("media: bad rung name %q", r.Name)
		case seen[r.Name]:
			return fmt.Errorf("media: rung %q twice", r.Name)
		case !r.Copy && (r.Width < 2 || r.Height < 2 || r.Width%2 != 0 || r.Height%2 != 0):
			return fmt.Errorf("media: rung %q: bad size %dx%d", r.Name, r.Width, r.Height)
		}
		seen[r.Name] = true
	}
	return nil
}

// validName is whether name is safe as a file name and as a playlist URI:
// letters, digits, '-', '_' and '.' only, not starting with a dot.
func validName(name string) bool {
	if name == "" || len(name) > 64 || name[0] == '.' {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// remuxArgs copy the source's video and audio streams into one
// fragmented MP4, without its metadata (a phone's tags include where it
// was) but with its rotation, which is not metadata but the track's
// display matrix.
func remuxArgs(src Source, out string) []string {
	args := []string{"-map", "0:" + strconv.Itoa(src.VideoStream)}
	if src.AudioStream >= 0 {
		// MPEG-TS carries AAC in ADTS frames, which MP4 wants as raw
		// frames with the config in the header; the filter passes
		// anything else through.
		args = append(args, "-map", "0:"+strconv.Itoa(src.AudioStream), "-bsf:a", "aac_adtstoasc")
	}
	return append(args, "-c", "copy", "-map_metadata", "-1", "-map_chapters", "-1",
		"-movflags", fragmentFlags, "-min_frag_duration", strconv.Itoa(remuxMinFragment),
		"-f", "mp4", fileURL(out))
}

// ladderArgs decode the source once and encode every rung from it: the
// frames are deinterlaced if need be, go to the source's constant output
// rate (a variable-rate source
// becomes constant; the fps filter does it once for all rungs, where an
// output's -fps_mode would do it per rung), are split, and each copy is
// scaled to its rung (upright: ffmpeg turns a rotated source when it
// decodes it) and encoded.
func (t *Tools) ladderArgs(src Source, rungs []Rung, outs []string) []string {
	rate := src.FrameRate
	if rate.Float() <= 0 {
		rate = Rational{25, 1}
	}
	var g strings.Builder
	fmt.Fprintf(&g, "[0:%d]", src.VideoStream)
	if src.Interlaced {
		// Each field pair to one frame, only where a frame is flagged
		// interlaced: the renditions are progressive, as players expect.
		g.WriteString("bwdif=mode=send_frame:parity=auto:deint=interlaced,")
	}
	fmt.Fprintf(&g, "fps=%s", rate)
	if len(rungs) > 1 {
		fmt.Fprintf(&g, ",split=%d", len(rungs))
		for i := range rungs {
			fmt.Fprintf(&g, "[s%d]", i)
		}
	} else {
		g.WriteString("[s0]")
	}
	for i, r := range rungs {
		fmt.Fprintf(&g, ";[s%d]scale=%d:%d,setsar=1,format=yuv420p[v%d]", i, r.Width, r.Height, i)
	}
	args := []string{"-filter_complex", g.String()}
	// Twice a segment's frames: x264 places no keyframe of its own between
	// the forced ones, which would differ from rung to rung.
	gop := strconv.Itoa(int(math.Ceil(2 * SegmentSeconds * rate.Float())))
	for i, r := range rungs {
		args = append(args, "-map", fmt.Sprintf("[v%d]", i),
			"-c:v", "libx264", "-preset", t.preset, "-profile:v", "high",
			"-crf", strconv.Itoa(r.CRF), "-maxrate", strconv.Itoa(r.MaxRate), "-bufsize", strconv.Itoa(r.BufSize),
			"-g", gop, "-sc_threshold", "0",
			"-force_key_frames", fmt.Sprintf("expr:gte(t,n_forced*%d)", SegmentSeconds))
		if src.AudioStream >= 0 {
			args = append(args, "-map", "0:"+strconv.Itoa(src.AudioStream))
			args = append(args, audioArgs(src, r)...)
		}
		args = append(args, "-map_metadata", "-1", "-map_chapters", "-1",
			"-movflags", fragmentFlags, "-f", "mp4", fileURL(outs[i]))
	}
	return args
}

// audioArgs encode the audio as AAC-LC, in stereo at most, at 44.1 or
// 48 kHz (the rates every player takes).
func audioArgs(src Source, r Rung) []string {
	channels := min(max(src.AudioChannels, 1), 2)
	rate := 48000
	if src.AudioRate == 44100 {
		rate = 44100
	}
	return []string{"-c:a", "aac", "-b:a", strconv.Itoa(r.AudioRate),
		"-ac", strconv.Itoa(channels), "-ar", strconv.Itoa(rate)}
}
