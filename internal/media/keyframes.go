package media

import (
	"bytes"
	"context"
	"strconv"
)

// scanKeyframes measures how far apart the source's video keyframes are,
// from the packet flags ffprobe reads off the container: no decoding, and
// constant memory however long the file (the lines are read as they come).
func (t *Tools) scanKeyframes(ctx context.Context, s *Source) error {
	args := append([]string{"-v", "error"}, s.inputArgs()...)
	args = append(args, "-select_streams", strconv.Itoa(s.VideoStream),
		"-show_entries", "packet=pts_time,flags", "-print_format", "csv=p=0")
	k := newKeyScan()
	if err := t.run.Run(ctx, t.ffprobe, args, k); err != nil {
		return err
	}
	s.KeyframeInterval, s.StartsWithKeyframe = k.result(s.Duration)
	return nil
}

// keyScan reads ffprobe's packet lines ("12.345678,K_") as they are
// written.
type keyScan struct {
	lineWriter
	packets  int
	firstKey bool
	haveKey  bool
	lastKey  float64
	maxGap   float64
	// start is the earliest time seen: MPEG-TS clocks do not start at 0.
	start     float64
	haveStart bool
}

func newKeyScan() *keyScan {
	k := &keyScan{}
	k.lineWriter.fn = k.packet
	return k
}

func (k *keyScan) packet(line []byte) {
	pts, flags, ok := bytes.Cut(bytes.TrimSpace(line), []byte(","))
	if !ok {
		return
	}
	key := bytes.HasPrefix(flags, []byte("K"))
	k.packets++
	if k.packets == 1 {
		k.firstKey = key
	}
	at, err := strconv.ParseFloat(string(pts), 64)
	if err != nil { // N/A: a packet without a time tells nothing of spacing
		return
	}
	if !k.haveStart || at < k.start {
		k.start, k.haveStart = at, true
	}
	if !key {
		return
	}
	if k.haveKey && at > k.lastKey {
		k.maxGap = max(k.maxGap, at-k.lastKey)
	}
	if !k.haveKey || at > k.lastKey {
		k.lastKey = at
	}
	k.haveKey = true
}

// result is the longest stretch without a keyframe, counting the one
// from the last keyframe to the end, and whether the stream starts with
// one. A stream with no keyframe at all has an infinite interval, which
// no source passes.
func (k *keyScan) result(duration float64) (interval float64, startsWithKey bool) {
	if !k.haveKey {
		return inf, false
	}
	return max(k.maxGap, k.start+duration-k.lastKey), k.firstKey
}

const inf = 1e308
