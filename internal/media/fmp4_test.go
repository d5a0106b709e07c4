package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Building boxes by hand, to test what ffmpeg never writes.

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
func zeros(n int) []byte  { return make([]byte, n) }

func box(typ string, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	return append(append(u32(uint32(8+len(body))), typ...), body...)
}

// bigBox writes a box with a 64-bit size.
func bigBox(typ string, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	return append(append(append(u32(1), typ...), u64(uint64(16+len(body)))...), body...)
}

func fullBox(typ string, version uint8, flags uint32, parts ...[]byte) []byte {
	return box(typ, append([][]byte{u32(uint32(version)<<24 | flags)}, parts...)...)
}

// identity and quarterTurn are tkhd matrices.
var (
	identity    = [9]uint32{0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000}
	quarterTurn = [9]uint32{0, 0x10000, 0, 0xffff0000, 0, 0, 0, 0, 0x40000000}
)

func tkhd(id uint32, w, h int, m [9]uint32) []byte {
	var mb []byte
	for _, v := range m {
		mb = append(mb, u32(v)...)
	}
	return fullBox("tkhd", 0, 3, zeros(8), u32(id), zeros(4), zeros(4), zeros(8), zeros(8), mb, u32(uint32(w)<<16), u32(uint32(h)<<16))
}

func avc1(profile, compat, level byte, w, h int) []byte {
	fields := bytes.Join([][]byte{zeros(6), u16(1), zeros(16), u16(uint16(w)), u16(uint16(h)), zeros(50)}, nil)
	return box("avc1", fields, box("avcC", []byte{1, profile, compat, level, 0xff, 0xe0}))
}

// esds is an ES descriptor of AAC whose AudioSpecificConfig is asc.
func esds(asc ...byte) []byte {
	dsi := append([]byte{0x05, byte(len(asc))}, asc...)
	dcd := append([]byte{0x04, byte(13 + len(dsi)), 0x40, 0x15, 0, 0, 0}, append(zeros(8), dsi...)...)
	es := append([]byte{0x03, 0x80, 0x80, 0x80, byte(3 + len(dcd)), 0, 1, 0}, dcd...) // a padded size, as some muxers write
	return fullBox("esds", 0, 0, es)
}

func mp4a(esds []byte) []byte {
	return box("mp4a", zeros(6), u16(1), zeros(8), u16(2), u16(16), zeros(4), u32(48000<<16), esds)
}

func trak(id uint32, handler string, timescale uint32, entry []byte, w, h int, m [9]uint32) []byte {
	return box("trak",
		tkhd(id, w, h, m),
		box("mdia",
			fullBox("mdhd", 0, 0, zeros(8), u32(timescale), zeros(4), zeros(4)),
			fullBox("hdlr", 0, 0, zeros(4), []byte(handler), zeros(12), []byte{0}),
			box("minf", box("stbl", fullBox("stsd", 0, 0, u32(1), entry)))))
}

func trex(id, duration uint32) []byte {
	return fullBox("trex", 0, 0, u32(id), u32(1), u32(duration), zeros(4), zeros(4))
}

// traf is a track fragment of n samples of duration d each: in the trun
// when perSample, else as the tfhd's default (d > 0) or the trex's (d == 0).
func traf(id uint32, tfdt uint64, n int, d uint32, perSample bool) []byte {
	var tfhd []byte
	if d > 0 && !perSample {
		tfhd = fullBox("tfhd", 0, 0x020008, u32(id), u32(d))
	} else {
		tfhd = fullBox("tfhd", 0, 0x020000, u32(id))
	}
	flags, samples := uint32(0x000201), []byte{} // data offset, sizes
	if perSample {
		flags |= 0x100
	}
	for range n {
		if perSample {
			samples = append(samples, u32(d)...)
		}
		samples = append(samples, u32(100)...)
	}
	return box("traf", tfhd, fullBox("tfdt", 1, 0, u64(tfdt)), fullBox("trun", 0, flags, u32(uint32(n)), u32(0), samples))
}

// testFile is a fragmented MP4 with a 90 kHz video track (30 fps, 3 s
// fragments: the first from per-sample durations, the second from the
// tfhd's default, the third from trex's) and an audio track.
func testFile() []byte {
	moov := box("moov",
		fullBox("mvhd", 0, 0, zeros(96)),
		trak(1, "vide", 90000, avc1(0x64, 0, 0x1f, 1280, 720), 1280, 720, identity),
		trak(2, "soun", 48000, mp4a(esds(0x11, 0x90)), 0, 0, identity),
		box("mvex", trex(1, 3000), trex(2, 1024)))
	frag := func(i int, perSample bool, d uint32) []byte {
		return box("moof", fullBox("mfhd", 0, 0, u32(uint32(i+1))),
			traf(1, uint64(i)*270000, 90, d, perSample),
			traf(2, uint64(i)*144000, 141, 0, false))
	}
	return bytes.Join([][]byte{
		box("ftyp", []byte("iso5"), u32(512), []byte("iso5iso6mp41")),
		moov,
		fullBox("sidx", 1, 0, zeros(40)),
		frag(0, true, 3000), box("mdat", zeros(10)),
		frag(1, false, 3000), box("mdat", zeros(20)),
		frag(2, false, 0), box("mdat", zeros(5)),
	}, nil)
}

func parse(b []byte) (*Index, error) { return ParseIndex(bytes.NewReader(b), int64(len(b))) }

func TestIndexByHand(t *testing.T) {
	b := testFile()
	ix, err := parse(b)
	if err != nil {
		t.Fatal(err)
	}
	checkCoverage(t, "test", ix)
	if ix.Codecs != "avc1.64001f,mp4a.40.2" || ix.Width != 1280 || ix.Height != 720 {
		t.Errorf("codecs %q, %dx%d", ix.Codecs, ix.Width, ix.Height)
	}
	if len(ix.Segments) != 3 || ix.Duration != 9 || ix.FrameRate != 30 {
		t.Fatalf("%d segments, %v s, %v fps", len(ix.Segments), ix.Duration, ix.FrameRate)
	}
	for i, s := range ix.Segments {
		if s.Start != float64(3*i) || s.Duration != 3 {
			t.Errorf("segment %d: %+v", i, s)
		}
	}
	// The sidx between the moov and the first moof goes with the first
	// segment.
	if moof := int64(bytes.Index(b, []byte("moof")) - 4); ix.Segments[0].Offset != ix.Init.Length || ix.Segments[0].Offset >= moof {
		t.Errorf("first segment at %d, init ends at %d, moof at %d", ix.Segments[0].Offset, ix.Init.Length, moof)
	}
}

func TestIndexVariants(t *testing.T) {
	ftyp := box("ftyp", []byte("iso5"), u32(0))
	moov := func(m [9]uint32, audio []byte) []byte {
		traks := [][]byte{trak(1, "vide", 1000, avc1(0x42, 0xc0, 0x1e, 640, 360), 640, 360, m)}
		if audio != nil {
			traks = append(traks, trak(2, "soun", 48000, audio, 0, 0, identity))
		}
		return box("moov", append(traks, box("mvex", trex(1, 40)))...)
	}
	moof := box("moof", traf(1, 0, 25, 40, true))
	tests := []struct {
		name          string
		file          []byte
		codecs        string
		width, height int
		duration      float64
	}{
		{"silent", bytes.Join([][]byte{ftyp, moov(identity, nil), moof, box("mdat")}, nil), "avc1.42c01e", 640, 360, 1},
		{"rotated", bytes.Join([][]byte{ftyp, moov(quarterTurn, nil), moof, box("mdat")}, nil), "avc1.42c01e", 360, 640, 1},
		{"he-aac", bytes.Join([][]byte{ftyp, moov(identity, mp4a(esds(0x2b, 0x11, 0x88))), moof, box("mdat")}, nil), "avc1.42c01e,mp4a.40.5", 640, 360, 1},
		{"escaped object type", bytes.Join([][]byte{ftyp, moov(identity, mp4a(esds(0xf8, 0x20))), moof, box("mdat")}, nil), "avc1.42c01e,mp4a.40.33", 640, 360, 1},
		{"no esds", bytes.Join([][]byte{ftyp, moov(identity, box("mp4a", zeros(28))), moof, box("mdat")}, nil), "avc1.42c01e,mp4a.40.2", 640, 360, 1},
		{"64-bit sizes", bytes.Join([][]byte{ftyp, moov(identity, nil), moof, bigBox("mdat", zeros(10))}, nil), "avc1.42c01e", 640, 360, 1},
		{"mdat to the end", bytes.Join([][]byte{ftyp, moov(identity, nil), moof, append(u32(0), "mdat\x00\x00\x00"...)}, nil), "avc1.42c01e", 640, 360, 1},
		{"styp before a moof", bytes.Join([][]byte{ftyp, moov(identity, nil), moof, box("mdat"), box("styp", zeros(8)), moof, box("mdat")}, nil), "avc1.42c01e", 640, 360, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ix, err := parse(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if ix.Codecs != tc.codecs || ix.Width != tc.width || ix.Height != tc.height || ix.Duration != tc.duration {
				t.Errorf("%q %dx%d %v s; want %q %dx%d %v s", ix.Codecs, ix.Width, ix.Height, ix.Duration, tc.codecs, tc.width, tc.height, tc.duration)
			}
			checkCoverage(t, tc.name, ix)
		})
	}

	// A styp belongs to the segment it precedes; an mfra to none.
	f := bytes.Join([][]byte{ftyp, moov(identity, nil), moof, box("mdat"), box("styp", zeros(8)), moof, box("mdat"), box("mfra", zeros(8))}, nil)
	ix, err := parse(f)
	if err != nil {
		t.Fatal(err)
	}
	styp := int64(bytes.Index(f, []byte("styp")) - 4)
	mfra := int64(bytes.Index(f, []byte("mfra")) - 4)
	if s := ix.Segments[1]; s.Offset != styp || s.Offset+s.Length != mfra {
		t.Errorf("second segment %v, want from the styp at %d to the mfra at %d", s.Range, styp, mfra)
	}
}

func TestIndexRefuses(t *testing.T) {
	ftyp := box("ftyp", []byte("iso5"), u32(0))
	vide := trak(1, "vide", 1000, avc1(0x64, 0, 0x1f, 64, 64), 64, 64, identity)
	moov := box("moov", vide, box("mvex", trex(1, 40)))
	moof := box("moof", traf(1, 0, 25, 40, true))
	mdat := box("mdat", zeros(4))
	huge := box("moof", box("traf", fullBox("tfhd", 0, 0x020000, u32(1)), fullBox("trun", 0, 0x101, u32(1<<30), u32(0))))
	tests := map[string][]byte{
		"empty":                 {},
		"no ftyp first":         bytes.Join([][]byte{moov, ftyp, moof, mdat}, nil),
		"no moov":               bytes.Join([][]byte{ftyp, moof, mdat}, nil),
		"moof before moov":      bytes.Join([][]byte{ftyp, moof, moov, mdat}, nil),
		"not fragmented":        bytes.Join([][]byte{ftyp, box("moov", vide), moof, mdat}, nil),
		"no video":              bytes.Join([][]byte{ftyp, box("moov", trak(1, "soun", 48000, mp4a(nil), 0, 0, identity), box("mvex", trex(1, 1024))), moof, mdat}, nil),
		"no fragments":          bytes.Join([][]byte{ftyp, moov}, nil),
		"mdat before moof":      bytes.Join([][]byte{ftyp, moov, mdat, moof, mdat}, nil),
		"moof without mdat":     bytes.Join([][]byte{ftyp, moov, moof, moof, mdat}, nil),
		"last moof bare":        bytes.Join([][]byte{ftyp, moov, moof, mdat, moof}, nil),
		"two moov":              bytes.Join([][]byte{ftyp, moov, moov, moof, mdat}, nil),
		"fragment of no video":  bytes.Join([][]byte{ftyp, moov, box("moof", traf(2, 0, 25, 40, true)), mdat}, nil),
		"trun past its box":     bytes.Join([][]byte{ftyp, moov, huge, mdat}, nil),
		"box past the end":      bytes.Join([][]byte{ftyp, moov, moof, u32(1 << 20), []byte("mdat")}, nil),
		"64-bit size too big":   bytes.Join([][]byte{ftyp, moov, moof, u32(1), []byte("mdat"), u64(math.MaxUint64)}, nil),
		"box size below header": bytes.Join([][]byte{ftyp, moov, moof, u32(4), []byte("mdat")}, nil),
		"truncated header":      bytes.Join([][]byte{ftyp, moov, moof, mdat, []byte("abc")}, nil),
		"moov too large":        bytes.Join([][]byte{ftyp, box("moov", zeros(maxMoov+1)), moof, mdat}, nil),
	}
	for name, b := range tests {
		if _, err := parse(b); !errors.Is(err, ErrBadIndex) {
			t.Errorf("%s: %v, want ErrBadIndex", name, err)
		}
	}

	// Default durations need no samples listed: four billion of them are
	// counted, not read.
	many := box("moof", box("traf", fullBox("tfhd", 0, 0x020008, u32(1), u32(1)), fullBox("trun", 0, 0, u32(math.MaxUint32))))
	ix, err := parse(bytes.Join([][]byte{ftyp, moov, many, mdat}, nil))
	if err != nil || ix.Duration != float64(math.MaxUint32)/1000 {
		t.Errorf("default durations: %v, %v", ix, err)
	}
}

// TestIndexDamaged cuts and corrupts a real file: the index either fails
// with ErrBadIndex or covers what it read, never panics.
func TestIndexDamaged(t *testing.T) {
	b := testFile()
	for n := range len(b) {
		checkIndexInvariants(t, b[:n])
	}
	for i := range len(b) {
		c := bytes.Clone(b)
		c[i] ^= 0xff
		checkIndexInvariants(t, c)
	}
}

// checkIndexInvariants parses b and checks what any index must be.
func checkIndexInvariants(t testing.TB, b []byte) {
	ix, err := parse(b)
	if err != nil {
		if !errors.Is(err, ErrBadIndex) {
			t.Fatalf("%v, want ErrBadIndex", err)
		}
		return
	}
	at := ix.Init.Offset
	if at != 0 || ix.Init.Length <= 0 || len(ix.Segments) == 0 {
		t.Fatalf("init %v, %d segments", ix.Init, len(ix.Segments))
	}
	at = ix.Init.Length
	for _, s := range ix.Segments {
		if s.Offset != at || s.Length <= 0 || s.Duration <= 0 || math.IsInf(s.Duration, 0) || math.IsNaN(s.Start) {
			t.Fatalf("segment %+v after %d", s, at)
		}
		at += s.Length
	}
	if at > ix.Size || ix.Size != int64(len(b)) {
		t.Fatalf("segments end at %d of %d", at, ix.Size)
	}
	if !validCodecs(ix.Codecs) {
		t.Fatalf("codecs %q", ix.Codecs)
	}
}

// FuzzIndex feeds ParseIndex damaged files. Its seeds are the files
// built by hand in testdata/fuzz/FuzzIndex and the ffmpeg-made
// testdata/tiny.mp4.
func FuzzIndex(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "tiny.mp4")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkIndexInvariants(t, b) })
}

// TestIndexTiny indexes the small ffmpeg-made rendition kept in testdata
// (also a seed of FuzzIndex).
func TestIndexTiny(t *testing.T) {
	ix, err := IndexFile(filepath.Join("testdata", "tiny.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	checkCoverage(t, "tiny", ix)
	if !strings.HasPrefix(ix.Codecs, "avc1.") || !strings.HasSuffix(ix.Codecs, ",mp4a.40.2") || len(ix.Segments) != 2 {
		t.Errorf("codecs %q, %d segments", ix.Codecs, len(ix.Segments))
	}
}
