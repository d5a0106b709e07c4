package loadtest

import (
	"strings"
	"testing"
)

// A master playlist as reel writes it: the rung players start with first,
// then the others from the lowest up.
const testMaster = `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=1500000,AVERAGE-BANDWIDTH=1200000,RESOLUTION=854x480,CODECS="avc1.64001f,mp4a.40.2",FRAME-RATE=30.000
480.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=500000,RESOLUTION=426x240,CODECS="avc1.640015,mp4a.40.2"
240.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2"

360.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720
720.m3u8
`

func TestParseMasterAndPick(t *testing.T) {
	vs, err := parseMaster([]byte(testMaster))
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 4 || vs[0] != (hlsVariant{URI: "480.m3u8", Bandwidth: 1500000, Width: 854, Height: 480}) ||
		vs[2].URI != "360.m3u8" || vs[3].short() != 720 {
		t.Fatalf("%+v", vs)
	}
	for _, c := range []struct {
		short int
		want  string
	}{
		{360, "360.m3u8"}, // that size
		{400, "360.m3u8"}, // else the largest below
		{1080, "720.m3u8"},
		{100, "240.m3u8"}, // else the smallest
	} {
		if got := pickVariant(vs, c.short); got.URI != c.want {
			t.Errorf("pick %d: %s, want %s", c.short, got.URI, c.want)
		}
	}
	// Portrait: the short side is the width.
	p, err := parseMaster([]byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=360x640\np.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=480x854\nq.m3u8\n"))
	if err != nil || pickVariant(p, 360).URI != "p.m3u8" {
		t.Fatalf("%+v %v", p, err)
	}

	for name, bad := range map[string]string{
		"not a playlist": "<html>",
		"empty":          "",
		"no variant":     "#EXTM3U\n#EXT-X-VERSION:7\n",
		"no URI":         "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n",
	} {
		if _, err := parseMaster([]byte(bad)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseMedia(t *testing.T) {
	// reel's form: every range with its offset, into one file.
	m, err := parseMedia([]byte(`#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="360.mp4",BYTERANGE="812@0"
#EXTINF:4.000,
#EXT-X-BYTERANGE:1000@812
360.mp4
#EXTINF:3.500,
#EXT-X-BYTERANGE:2000@1812
360.mp4
#EXT-X-ENDLIST
`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Init != (hlsPart{URI: "360.mp4", Offset: 0, Length: 812}) || len(m.Segments) != 2 ||
		m.Segments[1] != (hlsPart{URI: "360.mp4", Offset: 1812, Length: 2000, Duration: 3.5}) {
		t.Fatalf("%+v", m)
	}
	if got := m.Segments[0].rangeHeader(); got != "bytes=812-1811" {
		t.Errorf("range %q", got)
	}

	// Ranges without an offset follow the previous range of their file;
	// segments without a range are whole files.
	m, err = parseMedia([]byte("#EXTM3U\n#EXTINF:4,\n#EXT-X-BYTERANGE:100@50\na.mp4\n#EXTINF:4,\n#EXT-X-BYTERANGE:30\na.mp4\n#EXTINF:2.5,\nb.ts\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Init.URI != "" || m.Segments[1].Offset != 150 || m.Segments[1].Length != 30 ||
		m.Segments[2] != (hlsPart{URI: "b.ts", Length: -1, Duration: 2.5}) || m.Segments[2].rangeHeader() != "" {
		t.Fatalf("%+v", m)
	}

	for name, bad := range map[string]string{
		"no segment":          "#EXTM3U\n#EXT-X-ENDLIST\n",
		"first range, no @":   "#EXTM3U\n#EXTINF:4,\n#EXT-X-BYTERANGE:100\na.mp4\n",
		"bad range":           "#EXTM3U\n#EXTINF:4,\n#EXT-X-BYTERANGE:x@1\na.mp4\n",
		"zero range":          "#EXTM3U\n#EXTINF:4,\n#EXT-X-BYTERANGE:0@1\na.mp4\n",
		"bad EXTINF":          "#EXTM3U\n#EXTINF:NaN,\na.mp4\n",
		"map range, no @":     "#EXTM3U\n#EXT-X-MAP:URI=\"a.mp4\",BYTERANGE=\"10\"\n#EXTINF:4,\na.mp4\n",
		"not a playlist":      "#EXT-X-VERSION:7\n",
		"larger than a limit": "#EXTM3U\n" + strings.Repeat("#", maxPlaylist),
	} {
		if _, err := parseMedia([]byte(bad)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestAttributes(t *testing.T) {
	got := attributes(`BANDWIDTH=1,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=640x360,NAME="x`)
	want := map[string]string{"BANDWIDTH": "1", "CODECS": "avc1.64001f,mp4a.40.2", "RESOLUTION": "640x360", "NAME": "x"}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}
