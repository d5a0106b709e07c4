package videos

import (
	"slices"
	"strings"
	"testing"

	"github.com/reel-video/reel/internal/media"
)

// The ladder's rungs by height: the first alone, then the rest without a
// second rung of the first's height.
func TestLadderOf(t *testing.T) {
	src := func(codec string, w, h int) media.Source {
		return media.Source{VideoCodec: codec, PixFmt: "yuv420p", Profile: "High", Width: w, Height: h, Duration: 10,
			FrameRate: media.Rational{Num: 25, Den: 1}, AudioStream: -1, KeyframeInterval: 2, StartsWithKeyframe: true}
	}
	for _, c := range []struct {
		src   media.Source
		first int
		copy  bool
		rest  []int
	}{
		{src("h264", 640, 360), 360, true, []int{240}}, // the remux is the 360 rendition
		{src("h264", 1000, 700), 700, true, []int{240, 360, 480}},
		{src("vp9", 640, 360), 240, false, []int{360}}, // no remux: the lowest rung first
		{src("vp9", 360, 640), 426, false, []int{640}}, // portrait: named by pixel height
		{src("h264", 320, 240), 240, true, nil},        // one rung, the remux
	} {
		l := ladderOf(c.src)
		var rest []int
		for _, p := range l[1:] {
			rest = append(rest, p.Height)
			if p.stage != StageRest || p.Copy || p.weight <= 0 {
				t.Errorf("%dx%d %s: rest rung %+v", c.src.Width, c.src.Height, c.src.VideoCodec, p)
			}
		}
		if l[0].Height != c.first || l[0].Copy != c.copy || l[0].stage != StageFirst || !slices.Equal(rest, c.rest) {
			t.Errorf("%dx%d %s: first %d (copy %v), rest %v; want %d (%v), %v", c.src.Width, c.src.Height, c.src.VideoCodec,
				l[0].Height, l[0].Copy, rest, c.first, c.copy, c.rest)
		}
		if l[0].Copy && l[0].weight >= float64(l[0].Width*l[0].Height) {
			t.Errorf("a remux weighs %v, no less than an encode", l[0].weight)
		}
	}
}

// The master playlist starts with the highest rendition no taller (short
// side) than 480, then lists the others from the lowest up.
func TestMasterPlaylistOrder(t *testing.T) {
	rung := func(w, h int) rendition {
		return rendition{Height: h, Width: w, Bandwidth: int64(h) * 1000, Codecs: "avc1.64001f,mp4a.40.2", State: renditionDone, CreatedAt: int64(h)}
	}
	for _, c := range []struct {
		done []rendition
		want []string
	}{
		{[]rendition{rung(426, 240), rung(640, 360), rung(854, 480), rung(1280, 720)}, []string{"480.m3u8", "240.m3u8", "360.m3u8", "720.m3u8"}},
		{[]rendition{rung(1280, 720), rung(1920, 1080)}, []string{"720.m3u8", "1080.m3u8"}},                         // none that small: the lowest
		{[]rendition{rung(240, 426), rung(360, 640), rung(480, 854)}, []string{"854.m3u8", "426.m3u8", "640.m3u8"}}, // portrait: by short side
	} {
		m, err := masterPlaylist("v", c.done)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for line := range strings.Lines(string(m.data)) {
			if l := strings.TrimSpace(line); strings.HasSuffix(l, ".m3u8") {
				got = append(got, l)
			}
		}
		if !slices.Equal(got, c.want) || m.info.Size != int64(len(m.data)) || m.info.ETag == "" || m.info.ModTime.IsZero() {
			t.Errorf("master lists %v, want %v (%+v)", got, c.want, m.info)
		}
	}
}

// A missing streaming file says what is missing.
func TestMissingStreamingFile(t *testing.T) {
	p := playable{ladder: map[int]string{360: renditionSkipped + ": " + reasonQuota}, files: map[string]derivedFile{}}
	for name, want := range map[string]string{
		"360.mp4":        "rendition 360 was skipped: quota_exceeded",
		"720.m3u8":       "rendition 720 is not ready",
		"storyboard.vtt": "the storyboard is not ready yet",
		"master.m3u8":    "no rendition is ready yet",
		"0360.mp4":       "no such file",
		"secret.txt":     "no such file",
	} {
		_, _, _, err := p.streamingFile(name)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
}
