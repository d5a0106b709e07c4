package media

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
)

// Storyboard is a sprite sheet of thumbnails, one every Interval seconds
// from the start, laid out in rows of Columns, for previews on a seek
// bar.
type Storyboard struct {
	Interval              float64 // seconds between tiles
	Tiles                 int
	Columns, Rows         int
	TileWidth, TileHeight int
	Duration              float64 // of the video, where the last tile's cue ends
}

const (
	// maxTiles bounds a sheet: a 100-tile sheet of 160-pixel tiles is
	// 1600×900 for a 16:9 video, a JPEG of some 100 KiB.
	maxTiles = 100
	// tileWidth is a tile's width; its height keeps the aspect.
	tileWidth = 160
	// storyboardColumns is how many tiles a row holds.
	storyboardColumns = 10
	// lastTileMargin keeps the last tile from being planned so close to
	// the end that no frame follows its time (the video stream may stop a
	// little before the file's duration).
	lastTileMargin = 0.5
	// tileQuality is the JPEG encoder's quantizer (2 best, 31 worst).
	tileQuality = 5
)

// PlanStoryboard lays out the storyboard of s: a tile every whole number
// of seconds, as few as keep the sheet to maxTiles.
func PlanStoryboard(s Source) Storyboard {
	d := max(s.Duration, 0)
	interval := max(1, math.Ceil(d/maxTiles))
	tiles := min(maxTiles, int(math.Floor(max(0, d-lastTileMargin)/interval))+1)
	w := min(tileWidth, even(float64(max(s.Width, 2)), math.Floor))
	h := even(float64(w)*float64(max(s.Height, 1))/float64(max(s.Width, 1)), math.Round)
	cols := min(storyboardColumns, tiles)
	return Storyboard{
		Interval: interval, Tiles: tiles,
		Columns: cols, Rows: (tiles + cols - 1) / cols,
		TileWidth: w, TileHeight: h, Duration: d,
	}
}

// Storyboard writes the sprite sheet of src to out as a JPEG: the first
// frame at or after each tile's time, scaled to the tile. Any file src can
// be, such as its smallest rendition, which is the cheapest to decode.
// On failure no file is left at out.
func (t *Tools) Storyboard(ctx context.Context, src Source, out string) (sb Storyboard, err error) {
	sb = PlanStoryboard(src)
	defer func() {
		if err != nil {
			_ = os.Remove(out)
		}
	}()
	// setpts makes the times count from the first frame (MPEG-TS clocks
	// do not start at 0); select keeps the first frame at or after each
	// tile's time, so a frame counts for a tile even where the frames
	// are sparse.
	filter := fmt.Sprintf("setpts=PTS-STARTPTS,select='gte(t,selected_n*%s)',scale=%d:%d,setsar=1,tile=%dx%d",
		strconv.FormatFloat(sb.Interval, 'f', -1, 64), sb.TileWidth, sb.TileHeight, sb.Columns, sb.Rows)
	args := append([]string{"-nostdin", "-hide_banner", "-v", "error", "-nostats", "-y"}, src.inputArgs()...)
	args = append(args, "-map", "0:"+strconv.Itoa(src.VideoStream), "-vf", filter,
		"-frames:v", "1", "-c:v", "mjpeg", "-q:v", strconv.Itoa(tileQuality),
		"-f", "image2", "-update", "1", fileURL(out))
	if err := t.run.Run(ctx, t.ffmpeg, args, nil); err != nil {
		return Storyboard{}, err
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
		return Storyboard{}, fmt.Errorf("%w: ffmpeg wrote no storyboard", ErrToolFailed)
	}
	return sb, nil
}

// VTT writes the WebVTT file of the storyboard: a cue per tile, from its
// time to the next tile's (the last to the end of the video), whose text
// is the sheet's URI (relative, as spriteURI is given) with the tile's
// place as a media fragment: "sprite.jpg#xywh=160,0,160,90".
func (sb Storyboard) VTT(spriteURI string) ([]byte, error) {
	if !validName(spriteURI) {
		return nil, fmt.Errorf("media: bad sprite URI %q", spriteURI)
	}
	var b bytes.Buffer
	b.WriteString("WEBVTT\n")
	for i := range sb.Tiles {
		from := float64(i) * sb.Interval
		to := min(from+sb.Interval, sb.Duration)
		if i == sb.Tiles-1 {
			to = max(sb.Duration, from+sb.Interval/2) // no empty last cue
		}
		x, y := (i%sb.Columns)*sb.TileWidth, (i/sb.Columns)*sb.TileHeight
		fmt.Fprintf(&b, "\n%s --> %s\n%s#xywh=%d,%d,%d,%d\n", vttTime(from), vttTime(to), spriteURI, x, y, sb.TileWidth, sb.TileHeight)
	}
	return b.Bytes(), nil
}

// vttTime writes seconds as WebVTT's hh:mm:ss.ttt.
func vttTime(s float64) string {
	ms := int64(math.Round(s * 1000))
	return fmt.Sprintf("%02d:%02d:%02d.%03d", ms/3_600_000, ms/60_000%60, ms/1000%60, ms%1000)
}
