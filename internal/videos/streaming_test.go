package videos_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/media/mediatest"
	"github.com/reel-video/reel/internal/videos"
)

// Adaptive streaming through the service and over real sockets: the
// ladder's stages, the stored rungs (ffprobe), the grant, the playlists,
// the byte ranges they address, ffmpeg playing the master playlist, and
// the storyboard.

// transcode runs one stage of a video's ladder, as its job would.
func (e *env) transcode(id string, stage videos.Stage) {
	e.t.Helper()
	if err := e.svc.Transcode(context.Background(), id, stage); err != nil {
		e.t.Fatalf("transcode %s: %v", stage, err)
	}
}

// streamingState is a video's streaming field as a client reads it.
type streamingState struct {
	State             string `json:"state"`
	Percent           int    `json:"percent"`
	RenditionsDone    []int  `json:"renditions_done"`
	RenditionsSkipped []struct {
		Height int    `json:"height"`
		Reason string `json:"reason"`
	} `json:"renditions_skipped"`
}

func (e *env) streaming(u user, id string) streamingState {
	e.t.Helper()
	r := e.do("GET", "/api/v1/videos/"+id, u.token, nil)
	if r.status != 200 {
		e.t.Fatalf("get video: %d %s", r.status, r.raw)
	}
	var body struct {
		Video struct {
			Streaming *streamingState `json:"streaming"`
		} `json:"video"`
	}
	if err := json.Unmarshal(r.raw, &body); err != nil || body.Video.Streaming == nil {
		e.t.Fatalf("no streaming in %s (%v)", r.raw, err)
	}
	return *body.Video.Streaming
}

// grantBody is a playback grant as a client reads it.
type grantBody struct {
	URL           string  `json:"url"`
	PosterURL     *string `json:"poster_url"`
	HLSURL        *string `json:"hls_url"`
	StoryboardURL *string `json:"storyboard_url"`
	Renditions    []struct {
		Height, Width int
		Bandwidth     int64
		URL           string
	} `json:"renditions"`
}

func (e *env) grant(u user, id string) grantBody {
	e.t.Helper()
	r := e.do("POST", "/api/v1/videos/"+id+"/playback", u.token, nil)
	if r.status != 200 {
		e.t.Fatalf("playback: %d %s", r.status, r.raw)
	}
	var g grantBody
	if err := json.Unmarshal(r.raw, &g); err != nil || g.Renditions == nil {
		e.t.Fatalf("grant %s: %v (renditions must be an array)", r.raw, err)
	}
	return g
}

func (g grantBody) heights() []int {
	var hs []int
	for _, r := range g.Renditions {
		hs = append(hs, r.Height)
	}
	return hs
}

// storedFile reads a stored blob of a video from the disk store.
func (e *env) storedFile(id, name string) []byte {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dirs.blobs, "videos", id, name))
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// storedBytes sums the sizes of a video's stored blobs.
func (e *env) storedBytes(id string) int64 {
	e.t.Helper()
	var n int64
	for _, f := range e.blobFiles() {
		if strings.HasPrefix(f, filepath.Join("videos", id)+string(filepath.Separator)) {
			fi, err := os.Stat(filepath.Join(e.dirs.blobs, f))
			if err != nil {
				e.t.Fatal(err)
			}
			n += fi.Size()
		}
	}
	return n
}

// rungProbe is what ffprobe says of a stored rung.
type rungProbe struct {
	video, audio  string
	width, height int
	duration      float64
}

func probeRung(t *testing.T, path string) rungProbe {
	t.Helper()
	_, ffprobe := mediatest.Tools(t)
	out, err := exec.Command(ffprobe, "-v", "error", "-print_format", "json", "-show_streams", "-show_format", "file:"+path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var doc struct {
		Streams []struct {
			CodecType     string `json:"codec_type"`
			Name          string `json:"codec_name"`
			Width, Height int
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	var p rungProbe
	for _, s := range doc.Streams {
		switch s.CodecType {
		case "video":
			p.video, p.width, p.height = s.Name, s.Width, s.Height
		case "audio":
			p.audio = s.Name
		}
	}
	p.duration, _ = strconv.ParseFloat(doc.Format.Duration, 64)
	return p
}

// checkRungs ffprobes a video's stored rungs: H.264 and AAC, their sizes
// (by height) and the clip's length.
func (e *env) checkRungs(t *testing.T, id string, seconds float64, sizes map[int]int) {
	t.Helper()
	for h, w := range sizes {
		p := probeRung(t, filepath.Join(e.dirs.blobs, "videos", id, strconv.Itoa(h)+".mp4"))
		if p.video != "h264" || p.audio != "aac" || p.width != w || p.height != h || math.Abs(p.duration-seconds) > 0.3 {
			t.Errorf("rung %d: %+v, want h264/aac %dx%d of %.1f s", h, p, w, h, seconds)
		}
	}
}

// hlsAttrs parses an attribute list: BANDWIDTH=1,CODECS="a,b".
func hlsAttrs(s string) map[string]string {
	out := map[string]string{}
	for s != "" {
		k, rest, _ := strings.Cut(s, "=")
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`) + 1
			v, rest = rest[1:end], strings.TrimPrefix(rest[end+1:], ",")
		} else {
			v, rest, _ = strings.Cut(rest, ",")
		}
		out[k], s = v, rest
	}
	return out
}

func resolve(t *testing.T, base, ref string) string {
	t.Helper()
	b, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	r, err := url.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	return b.ResolveReference(r).String()
}

// walkHLS plays the master playlist at masterURL as a player would, over
// the signed paths: each media playlist it lists, and each byte range
// that one addresses (the init segment, then every segment), which must
// be the stored file's bytes and cover it to its end. It returns the
// heights listed, in the master's order, and the body bytes received.
func (e *env) walkHLS(t *testing.T, id, masterURL string) (heights []int, received int64) {
	t.Helper()
	get := func(u string, hdr ...string) resp {
		r := e.do("GET", u, "", nil, hdr...)
		if r.status == 200 || r.status == 206 {
			received += int64(len(r.raw))
		}
		return r
	}
	m := get(masterURL)
	if m.status != 200 || m.header.Get("Content-Type") != "application/vnd.apple.mpegurl" || !bytes.HasPrefix(m.raw, []byte("#EXTM3U\n")) {
		t.Fatalf("master: %d %v %s", m.status, m.header, m.raw)
	}
	lines := strings.Split(strings.TrimSpace(string(m.raw)), "\n")
	for i, line := range lines {
		attrs, ok := strings.CutPrefix(line, "#EXT-X-STREAM-INF:")
		if !ok {
			continue
		}
		a := hlsAttrs(attrs)
		uri := lines[i+1]
		h, err := strconv.Atoi(strings.TrimSuffix(uri, ".m3u8"))
		if err != nil || !strings.HasSuffix(a["RESOLUTION"], "x"+strconv.Itoa(h)) || a["BANDWIDTH"] == "" ||
			!strings.Contains(a["CODECS"], "avc1.") || !strings.Contains(a["CODECS"], "mp4a.40.2") {
			t.Fatalf("variant %q %v", uri, a)
		}
		heights = append(heights, h)
		mediaURL := resolve(t, masterURL, uri)
		pl := get(mediaURL)
		if pl.status != 200 || pl.header.Get("Content-Type") != "application/vnd.apple.mpegurl" {
			t.Fatalf("media playlist %s: %d %v", uri, pl.status, pl.header)
		}
		file := e.storedFile(id, strconv.Itoa(h)+".mp4")
		var next int64 // the ranges must follow one another from 0
		checkRange := func(ref, spec string) {
			n, off, _ := strings.Cut(spec, "@")
			length, _ := strconv.ParseInt(n, 10, 64)
			from, _ := strconv.ParseInt(off, 10, 64)
			if from != next || length <= 0 || ref != strconv.Itoa(h)+".mp4" {
				t.Fatalf("rendition %d: range %s of %s after byte %d", h, spec, ref, next)
			}
			r := get(resolve(t, mediaURL, ref), "Range", fmt.Sprintf("bytes=%d-%d", from, from+length-1))
			if r.status != 206 || r.header.Get("Content-Type") != "video/mp4" || !bytes.Equal(r.raw, file[from:from+length]) {
				t.Fatalf("rendition %d: range %s: %d %v (%d bytes)", h, spec, r.status, r.header, len(r.raw))
			}
			next = from + length
		}
		sc := bufio.NewScanner(bytes.NewReader(pl.raw))
		var pending string
		for sc.Scan() {
			l := sc.Text()
			switch {
			case strings.HasPrefix(l, "#EXT-X-MAP:"):
				a := hlsAttrs(strings.TrimPrefix(l, "#EXT-X-MAP:"))
				checkRange(a["URI"], a["BYTERANGE"])
			case strings.HasPrefix(l, "#EXT-X-BYTERANGE:"):
				pending = strings.TrimPrefix(l, "#EXT-X-BYTERANGE:")
			case l != "" && !strings.HasPrefix(l, "#"):
				checkRange(l, pending)
			}
		}
		if next != int64(len(file)) || !strings.HasSuffix(strings.TrimSpace(string(pl.raw)), "#EXT-X-ENDLIST") {
			t.Fatalf("rendition %d: ranges cover %d of %d bytes", h, next, len(file))
		}
	}
	return heights, received
}

// decodeFrames has ffmpeg play url to the end (its first variant's video,
// over HTTP) and returns the frames it decoded.
func decodeFrames(t *testing.T, u string) int {
	t.Helper()
	ffmpeg, _ := mediatest.Tools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-v", "error", "-i", u, "-map", "0:v:0", "-f", "null", "-progress", "pipe:1", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg -i %s: %v\n%s", u, err, stderr.String())
	}
	frames := -1
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "frame="); ok {
			frames, _ = strconv.Atoi(v)
		}
	}
	return frames
}

func TestStreamingRemuxFirstThenLadder(t *testing.T) {
	mediatest.Tools(t)
	withEnv(t, func(t *testing.T, e *env) {
		ann, bob := e.user("user"), e.user("user")
		id := e.mustUpload(ann, "ladder", testVideo(t, 3, 640, 360))

		// Before any rung: pending, the original plays, no HLS yet.
		if st := e.streaming(ann, id); st.State != "pending" || st.Percent != 0 || len(st.RenditionsDone) != 0 {
			t.Fatalf("before: %+v", st)
		}
		g := e.grant(bob, id)
		if g.HLSURL != nil || g.StoryboardURL != nil || len(g.Renditions) != 0 || g.PosterURL == nil {
			t.Fatalf("grant before: %+v", g)
		}
		master := strings.Replace(g.URL, "/video.mp4", "/master.m3u8", 1)
		if r := e.do("GET", master, "", nil); r.status != 404 || r.code() != "file_not_found" || !strings.Contains(r.body["detail"].(string), "no rendition is ready") {
			t.Fatalf("master before any rung: %d %s", r.status, r.raw)
		}

		// First: a remux of the H.264/AAC source, its 360 rendition.
		e.transcode(id, videos.StageFirst)
		if st := e.streaming(ann, id); st.State != "running" || !slices.Equal(st.RenditionsDone, []int{360}) || st.Percent <= 0 || st.Percent >= 100 {
			t.Fatalf("after the first rung: %+v", st)
		}
		g = e.grant(bob, id)
		if g.HLSURL == nil || !slices.Equal(g.heights(), []int{360}) || g.Renditions[0].Width != 640 || g.Renditions[0].Bandwidth <= 0 ||
			!strings.HasSuffix(g.Renditions[0].URL, "/"+id+"/360.mp4") || !strings.HasSuffix(*g.HLSURL, "/"+id+"/master.m3u8") {
			t.Fatalf("grant after the first rung: %+v", g)
		}
		if hs, _ := e.walkHLS(t, id, *g.HLSURL); !slices.Equal(hs, []int{360}) {
			t.Fatalf("master after the first rung lists %v", hs)
		}
		// The remux is the source's streams, copied.
		if p := probeRung(t, filepath.Join(e.dirs.blobs, "videos", id, "360.mp4")); p.video != "h264" || p.width != 640 {
			t.Fatalf("remux: %+v", p)
		}

		// The rest: the 240 rung (the remux is the 360 one).
		e.transcode(id, videos.StageRest)
		if st := e.streaming(ann, id); st.State != "done" || st.Percent != 100 || !slices.Equal(st.RenditionsDone, []int{240, 360}) || len(st.RenditionsSkipped) != 0 {
			t.Fatalf("after the ladder: %+v", st)
		}
		e.checkRungs(t, id, 3, map[int]int{240: 426, 360: 640})
		g = e.grant(bob, id)
		if !slices.Equal(g.heights(), []int{240, 360}) {
			t.Fatalf("grant after the ladder: %+v", g)
		}
		before := e.egress.total(bob.id)
		hs, received := e.walkHLS(t, id, *g.HLSURL)
		if !slices.Equal(hs, []int{360, 240}) { // the start rung first, then from the lowest up
			t.Fatalf("master lists %v", hs)
		}
		eventually(t, 5*time.Second, func() string {
			if got := e.egress.total(bob.id) - before; got != received {
				return fmt.Sprintf("egress metered %d, received %d", got, received)
			}
			return ""
		})
		// A rendition plays alone, with seeking (a plain <video src>).
		if r := e.do("GET", g.Renditions[0].URL, "", nil, "Range", "bytes=0-99"); r.status != 206 || len(r.raw) != 100 ||
			r.header.Get("Content-Type") != "video/mp4" || r.header.Get("Accept-Ranges") != "bytes" {
			t.Fatalf("rendition range: %d %v", r.status, r.header)
		}
		// ffmpeg plays the master playlist to the end: 3 s at 25 fps.
		if n := decodeFrames(t, *g.HLSURL); n < 73 || n > 77 {
			t.Fatalf("ffmpeg decoded %d frames of the HLS stream, want 75", n)
		}
		// Running a stage again makes nothing again.
		mod := func() time.Time {
			fi, err := os.Stat(filepath.Join(e.dirs.blobs, "videos", id, "240.mp4"))
			if err != nil {
				t.Fatal(err)
			}
			return fi.ModTime()
		}
		was := mod()
		e.transcode(id, videos.StageRest)
		if !mod().Equal(was) {
			t.Fatal("a second run of the rest made the 240 rung again")
		}

		// The storyboard.
		if err := e.svc.Storyboard(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		g = e.grant(bob, id)
		if g.StoryboardURL == nil || !strings.HasSuffix(*g.StoryboardURL, "/"+id+"/storyboard.vtt") {
			t.Fatalf("grant after the storyboard: %+v", g)
		}
		vtt := e.do("GET", *g.StoryboardURL, "", nil)
		if vtt.status != 200 || !strings.HasPrefix(vtt.header.Get("Content-Type"), "text/vtt") || !bytes.HasPrefix(vtt.raw, []byte("WEBVTT\n")) ||
			!bytes.Contains(vtt.raw, []byte("\nstoryboard.jpg#xywh=0,0,")) {
			t.Fatalf("storyboard.vtt: %d %v %s", vtt.status, vtt.header, vtt.raw)
		}
		sprite := e.do("GET", resolve(t, *g.StoryboardURL, "storyboard.jpg"), "", nil)
		if sprite.status != 200 || sprite.header.Get("Content-Type") != "image/jpeg" || !bytes.HasPrefix(sprite.raw, []byte{0xff, 0xd8}) {
			t.Fatalf("storyboard.jpg: %d %v", sprite.status, sprite.header)
		}
		// Everything stored is charged, and nothing else.
		if used, held, objects := e.quota.state(ann.id); used != e.storedBytes(id) || held != 0 || objects != 8 {
			t.Fatalf("quota: used %d of %d stored, %d held, %d objects (want video, poster, 2×2 rung files, 2 storyboard files)",
				used, e.storedBytes(id), held, objects)
		}
		// A name that is no file of the video says what exists.
		if r := e.do("GET", strings.Replace(*g.HLSURL, "master.m3u8", "720.mp4", 1), "", nil); r.status != 404 ||
			!strings.Contains(r.body["detail"].(string), "rendition 720 is not ready") {
			t.Fatalf("720.mp4: %d %s", r.status, r.raw)
		}
		e.noLeaks(t, 1)
	})
}

// webmClip makes a VP9/Opus WebM of seconds, w×h.
func webmClip(t *testing.T, seconds, w, h int) []byte {
	t.Helper()
	if !mediatest.HasEncoder(t, "libvpx-vp9") || !mediatest.HasEncoder(t, "libopus") {
		t.Skip("this ffmpeg has no libvpx-vp9 or libopus")
	}
	path := filepath.Join(t.TempDir(), "clip.webm")
	mediatest.FFmpeg(t, "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=duration=%d:size=%dx%d:rate=25", seconds, w, h),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:sample_rate=48000:duration=%d", seconds),
		"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k", "-c:a", "libopus", "-shortest",
		"-f", "webm", "file:"+path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStreamingEncodesFirstWhenNoRemux(t *testing.T) {
	mediatest.Tools(t)
	clip := webmClip(t, 3, 640, 360)
	withEnv(t, func(t *testing.T, e *env) {
		ann := e.user("user")
		// The poster is not cut yet: the first rung reads the upload's
		// spooled copy, which the poster worker then removes.
		r := e.upload(ann, "webm", clip)
		if r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.raw)
		}
		id := r.video(t)["id"].(string)
		if len(files(t, e.dirs.spool)) != 1 {
			t.Fatalf("spool: %v", files(t, e.dirs.spool))
		}
		// VP9 cannot be remuxed: the lowest rung goes first.
		e.transcode(id, videos.StageFirst)
		e.cutPosters()
		if st := e.streaming(ann, id); st.State != "running" || !slices.Equal(st.RenditionsDone, []int{240}) {
			t.Fatalf("after the first rung: %+v", st)
		}
		e.checkRungs(t, id, 3, map[int]int{240: 426})
		e.transcode(id, videos.StageRest)
		if st := e.streaming(ann, id); st.State != "done" || !slices.Equal(st.RenditionsDone, []int{240, 360}) {
			t.Fatalf("after the ladder: %+v", st)
		}
		e.checkRungs(t, id, 3, map[int]int{240: 426, 360: 640})
		g := e.grant(ann, id)
		if hs, _ := e.walkHLS(t, id, *g.HLSURL); !slices.Equal(hs, []int{360, 240}) {
			t.Fatalf("master lists %v", hs)
		}
		if n := decodeFrames(t, *g.HLSURL); n < 73 || n > 77 {
			t.Fatalf("ffmpeg decoded %d frames of the HLS stream, want 75", n)
		}
		e.noLeaks(t, 1)
	})
}

// A first rendition that is likely a remux (H.264 with AAC) goes to a
// queue of its own, so that a fast start never waits for other videos'
// encodes; one that must encode takes its turn in the transcode queue.
// Both queues are worked to the end.
func TestFirstRemuxHasItsOwnQueue(t *testing.T) {
	mediatest.Tools(t)
	if !mediatest.HasEncoder(t, "libx264") {
		t.Skip("this ffmpeg has no libx264: no clip to remux")
	}
	webm := webmClip(t, 2, 320, 180)
	withEnv(t, func(t *testing.T, e *env) {
		ann := e.user("user")
		h264 := e.mustUpload(ann, "h264", testVideo(t, 2, 320, 180))
		vp9 := e.mustUpload(ann, "vp9", webm)
		for id, want := range map[string]string{h264: "remux", vp9: "transcode"} {
			var queue string
			for _, j := range streamingJobRows(t, e, id) {
				if j.Kind == videos.KindTranscode && stageOf(t, j.EncodedArgs) == videos.StageFirst {
					queue = j.Queue
				}
			}
			if queue != want {
				t.Fatalf("video %s: its first rendition's job is in queue %q, want %q", id, queue, want)
			}
		}
		e.runJobs(videos.KindTranscode, videos.KindStoryboard)
		for _, id := range []string{h264, vp9} {
			if st := e.streaming(ann, id); st.State != "done" {
				t.Fatalf("video %s after its jobs: %+v", id, st)
			}
		}
	}, func(c *envConfig) { c.streamingJobs = true })
}
