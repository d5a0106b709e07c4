package media

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

func itoa(i int) string { return strconv.Itoa(i) }

// mediaPlaylist is a media playlist read back.
type mediaPlaylist struct {
	tags     map[string]string // tag → value, for the tags that occur once
	mapURI   string
	mapRange Range
	segments []playlistSegment
}

type playlistSegment struct {
	duration float64
	r        Range
	uri      string
}

// parseMediaPlaylist reads a media playlist strictly: known tags only,
// each EXTINF followed by its byte range and URI.
func parseMediaPlaylist(t *testing.T, b []byte) mediaPlaylist {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if lines[0] != "#EXTM3U" {
		t.Fatalf("first line %q", lines[0])
	}
	p := mediaPlaylist{tags: map[string]string{}}
	for i := 1; i < len(lines); i++ {
		tag, value, _ := strings.Cut(lines[i], ":")
		switch tag {
		case "#EXT-X-VERSION", "#EXT-X-TARGETDURATION", "#EXT-X-PLAYLIST-TYPE", "#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-ENDLIST":
			if _, dup := p.tags[tag]; dup {
				t.Fatalf("%s twice", tag)
			}
			p.tags[tag] = value
		case "#EXT-X-MAP":
			attrs := parseAttributes(t, value)
			p.mapURI = unquote(t, attrs["URI"])
			p.mapRange = parseByteRange(t, unquote(t, attrs["BYTERANGE"]))
		case "#EXTINF":
			d, ok := strings.CutSuffix(value, ",")
			if !ok || i+2 >= len(lines) {
				t.Fatalf("line %d: %q", i, lines[i])
			}
			dur, err := strconv.ParseFloat(d, 64)
			if err != nil {
				t.Fatalf("EXTINF %q", d)
			}
			br, ok := strings.CutPrefix(lines[i+1], "#EXT-X-BYTERANGE:")
			if !ok {
				t.Fatalf("line %d: %q, want a byte range", i+1, lines[i+1])
			}
			p.segments = append(p.segments, playlistSegment{dur, parseByteRange(t, br), lines[i+2]})
			i += 2
		default:
			t.Fatalf("line %d: unexpected %q", i, lines[i])
		}
	}
	return p
}

func parseByteRange(t *testing.T, s string) Range {
	t.Helper()
	n, o, ok := strings.Cut(s, "@")
	length, err1 := strconv.ParseInt(n, 10, 64)
	offset, err2 := strconv.ParseInt(o, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("byte range %q", s)
	}
	return Range{offset, length}
}

// parseAttributes reads an attribute list: NAME=value pairs separated by
// commas, where a quoted value may hold commas.
func parseAttributes(t *testing.T, s string) map[string]string {
	t.Helper()
	attrs := map[string]string{}
	for s != "" {
		name, rest, ok := strings.Cut(s, "=")
		if !ok {
			t.Fatalf("attribute list %q", s)
		}
		var value string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				t.Fatalf("unterminated quote in %q", s)
			}
			value, rest = rest[:end+2], rest[end+2:]
		} else {
			value, rest, _ = strings.Cut(rest, ",")
			rest = "," + rest
			if rest == "," {
				rest = ""
			}
		}
		if _, dup := attrs[name]; dup {
			t.Fatalf("attribute %s twice", name)
		}
		attrs[name] = value
		if rest != "" {
			if rest[0] != ',' {
				t.Fatalf("attribute list %q: no comma after %s", s, name)
			}
			rest = rest[1:]
		}
		s = rest
	}
	return attrs
}

func unquote(t *testing.T, s string) string {
	t.Helper()
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		t.Fatalf("%q is not quoted", s)
	}
	return s[1 : len(s)-1]
}

// checkMediaPlaylist reads the playlist back and checks it against the
// index it was written from: the tags, the init segment, and byte ranges
// that cover the file exactly.
func checkMediaPlaylist(t *testing.T, b []byte, uri string, ix *Index) {
	t.Helper()
	p := parseMediaPlaylist(t, b)
	for tag, want := range map[string]string{"#EXT-X-VERSION": "7", "#EXT-X-PLAYLIST-TYPE": "VOD", "#EXT-X-INDEPENDENT-SEGMENTS": "", "#EXT-X-ENDLIST": ""} {
		if got, ok := p.tags[tag]; !ok || got != want {
			t.Errorf("%s: %q, %v; want %q", tag, got, ok, want)
		}
	}
	if p.mapURI != uri || p.mapRange != ix.Init {
		t.Errorf("EXT-X-MAP %q %v, want %q %v", p.mapURI, p.mapRange, uri, ix.Init)
	}
	target, _ := strconv.Atoi(p.tags["#EXT-X-TARGETDURATION"])
	if len(p.segments) != len(ix.Segments) {
		t.Fatalf("%d segments, index has %d", len(p.segments), len(ix.Segments))
	}
	at, total := ix.Init.Length, 0.0
	for i, s := range p.segments {
		if s.uri != uri || s.r.Offset != at || s.r != ix.Segments[i].Range {
			t.Errorf("segment %d: %q %v, want %q at %d (%v)", i, s.uri, s.r, uri, at, ix.Segments[i].Range)
		}
		if int(math.Round(s.duration)) > target || !near(s.duration, ix.Segments[i].Duration, 0.0005) {
			t.Errorf("segment %d: %v s (target %d, index %v)", i, s.duration, target, ix.Segments[i].Duration)
		}
		at += s.r.Length
		total += s.duration
	}
	if at != ix.Size {
		t.Errorf("the segments end at %d of %d bytes", at, ix.Size)
	}
	if !near(total, ix.Duration, 0.01) {
		t.Errorf("the segments last %v, the index %v", total, ix.Duration)
	}
}

// checkMasterPlaylist reads the master playlist back and checks each
// variant's attributes.
func checkMasterPlaylist(t *testing.T, b []byte, variants []Variant) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	head := []string{"#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"}
	if len(lines) != len(head)+2*len(variants) {
		t.Fatalf("master playlist:\n%s", b)
	}
	for i, h := range head {
		if lines[i] != h {
			t.Errorf("line %d: %q, want %q", i, lines[i], h)
		}
	}
	for i, v := range variants {
		inf, ok := strings.CutPrefix(lines[len(head)+2*i], "#EXT-X-STREAM-INF:")
		if !ok {
			t.Fatalf("variant %d: %q", i, lines[len(head)+2*i])
		}
		a := parseAttributes(t, inf)
		want := map[string]string{
			"BANDWIDTH":         strconv.FormatInt(v.Bandwidth, 10),
			"AVERAGE-BANDWIDTH": strconv.FormatInt(v.AverageBandwidth, 10),
			"RESOLUTION":        itoa(v.Width) + "x" + itoa(v.Height),
			"CODECS":            `"` + v.Codecs + `"`,
			"FRAME-RATE":        strconv.FormatFloat(v.FrameRate, 'f', 3, 64),
		}
		if len(a) != len(want) {
			t.Errorf("variant %d: %v, want %v", i, a, want)
		}
		for k, w := range want {
			if a[k] != w {
				t.Errorf("variant %d: %s=%s, want %s", i, k, a[k], w)
			}
		}
		if v.Bandwidth < v.AverageBandwidth || v.AverageBandwidth <= 0 {
			t.Errorf("variant %d: bandwidth %d, average %d", i, v.Bandwidth, v.AverageBandwidth)
		}
		if lines[len(head)+2*i+1] != v.URI {
			t.Errorf("variant %d: URI %q, want %q", i, lines[len(head)+2*i+1], v.URI)
		}
	}
}

// testIndex is a small index by hand: an init segment and three 4 s
// segments, the last shorter.
func testIndex() *Index {
	ix := &Index{Init: Range{0, 1000}, Codecs: "avc1.64001e,mp4a.40.2", Width: 640, Height: 360, FrameRate: 30}
	at := int64(1000)
	for i, d := range []float64{4, 4, 1.5} {
		n := int64(500_000 * (i + 1))
		ix.Segments = append(ix.Segments, Segment{Range: Range{at, n}, Start: float64(4 * i), Duration: d})
		at += n
		ix.Duration += d
	}
	ix.Size = at
	return ix
}

func TestMediaPlaylist(t *testing.T) {
	ix := testIndex()
	b, err := MediaPlaylist("360p.mp4", ix)
	if err != nil {
		t.Fatal(err)
	}
	checkMediaPlaylist(t, b, "360p.mp4", ix)
	want := "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n" +
		"#EXT-X-MAP:URI=\"360p.mp4\",BYTERANGE=\"1000@0\"\n" +
		"#EXTINF:4.000,\n#EXT-X-BYTERANGE:500000@1000\n360p.mp4\n" +
		"#EXTINF:4.000,\n#EXT-X-BYTERANGE:1000000@501000\n360p.mp4\n" +
		"#EXTINF:1.500,\n#EXT-X-BYTERANGE:1500000@1501000\n360p.mp4\n" +
		"#EXT-X-ENDLIST\n"
	if string(b) != want {
		t.Errorf("got\n%s\nwant\n%s", b, want)
	}

	// The target duration is the longest segment rounded to the nearest
	// second: 4.6 s makes 5.
	ix.Segments[1].Duration = 4.6
	b, _ = MediaPlaylist("360p.mp4", ix)
	if p := parseMediaPlaylist(t, b); p.tags["#EXT-X-TARGETDURATION"] != "5" {
		t.Errorf("target %q, want 5", p.tags["#EXT-X-TARGETDURATION"])
	}

	for _, bad := range []string{"", "../x.mp4", "a b.mp4", "x.mp4\n#EXT-X-ENDLIST", `x".mp4`, ".hidden", "https://h/x.mp4"} {
		if _, err := MediaPlaylist(bad, ix); err == nil {
			t.Errorf("URI %q accepted", bad)
		}
	}
	if _, err := MediaPlaylist("x.mp4", &Index{}); err == nil {
		t.Error("an index without segments made a playlist")
	}
}

func TestMasterPlaylist(t *testing.T) {
	ix := testIndex()
	v := ix.Variant("360p.m3u8")
	// Peak: 1.5 MB in 1.5 s; average: 3 MB in 9.5 s.
	if v.Bandwidth != 8_000_000 || v.AverageBandwidth != int64(math.Ceil(3_000_000*8/9.5)) {
		t.Errorf("bandwidth %d, average %d", v.Bandwidth, v.AverageBandwidth)
	}
	small := Variant{URI: "240p.m3u8", Bandwidth: 500_000, AverageBandwidth: 400_000, Width: 426, Height: 240, Codecs: "avc1.640015", FrameRate: 29.97}
	b, err := MasterPlaylist([]Variant{small, v})
	if err != nil {
		t.Fatal(err)
	}
	checkMasterPlaylist(t, b, []Variant{small, v})
	want := "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=500000,AVERAGE-BANDWIDTH=400000,RESOLUTION=426x240,CODECS=\"avc1.640015\",FRAME-RATE=29.970\n240p.m3u8\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=8000000,AVERAGE-BANDWIDTH=2526316,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\",FRAME-RATE=30.000\n360p.m3u8\n"
	if string(b) != want {
		t.Errorf("got\n%s\nwant\n%s", b, want)
	}

	for _, bad := range []Variant{
		{URI: "../x.m3u8", Bandwidth: 1},
		{URI: "x.m3u8", Bandwidth: 1, Codecs: `avc1",X="`},
		{URI: "x.m3u8"},
	} {
		if _, err := MasterPlaylist([]Variant{bad}); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := MasterPlaylist(nil); err == nil {
		t.Error("no variants made a playlist")
	}
}
