package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

// ftyp builds an ISO BMFF ftyp box followed by an mdat box header.
func ftyp(major string, compatible ...string) []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.BigEndian, uint32(16+4*len(compatible)))
	b.WriteString("ftyp" + major + "\x00\x00\x02\x00")
	for _, c := range compatible {
		b.WriteString(c)
	}
	b.WriteString("\x00\x00\x10\x00mdat")
	return b.Bytes()
}

// ebml builds an EBML header with the given DocType (none if empty), its
// size coded on sizeLen bytes, followed by the start of a Segment.
func ebml(docType string, sizeLen int) []byte {
	body := []byte{0x42, 0x86, 0x81, 0x01, 0x42, 0xf7, 0x81, 0x01} // EBMLVersion, EBMLReadVersion
	if docType != "" {
		body = append(body, 0x42, 0x82, 0x80|byte(len(docType)))
		body = append(body, docType...)
	}
	body = append(body, 0x42, 0x87, 0x81, 0x04) // DocTypeVersion
	b := []byte{0x1a, 0x45, 0xdf, 0xa3}
	switch sizeLen {
	case 0: // unknown size
		b = append(b, 0xff)
	case 1:
		b = append(b, 0x80|byte(len(body)))
	case 8:
		b = append(b, 0x01, 0, 0, 0, 0, 0, 0, byte(len(body)))
	}
	b = append(b, body...)
	return append(b, 0x18, 0x53, 0x80, 0x67, 0x01, 0, 0, 0, 0, 0, 0, 0) // Segment
}

// oggPage builds a beginning-of-stream Ogg page holding one packet.
func oggPage(packet string) []byte {
	b := []byte("OggS\x00\x02")
	b = append(b, make([]byte, 20)...) // granule, serial, sequence, CRC
	var lacing []byte
	n := len(packet)
	for ; n >= 255; n -= 255 {
		lacing = append(lacing, 255)
	}
	lacing = append(lacing, byte(n))
	b = append(b, byte(len(lacing)))
	b = append(b, lacing...)
	return append(b, packet...)
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// ts builds n MPEG-TS packets of the given size with the sync byte at
// offset within each.
func ts(n, size, offset int) []byte {
	b := make([]byte, n*size)
	for i := range n {
		b[i*size+offset] = 0x47
		b[i*size+offset+1] = 0x40 // payload unit start, PID 0
	}
	return b
}

func TestSniff(t *testing.T) {
	tsBroken := ts(6, 188, 0)
	tsBroken[3*188] = 0x48
	random := make([]byte, SniffLen)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	theora := "\x80theora\x03\x02\x01" + string(make([]byte, 33))
	vorbis := "\x01vorbis" + string(make([]byte, 23))

	tests := []struct {
		name string
		head []byte
		want string // "" means ErrNotVideo
	}{
		{"mp4 isom", ftyp("isom", "isom", "iso2", "avc1", "mp41"), "video/mp4"},
		{"mp4 mp42", ftyp("mp42", "mp42", "isom"), "video/mp4"},
		{"mp4 avc1", ftyp("avc1"), "video/mp4"},
		{"m4v", ftyp("M4V ", "M4V ", "M4A ", "mp42", "isom"), "video/mp4"},
		{"quicktime", ftyp("qt  ", "qt  "), "video/quicktime"},
		{"3gp", ftyp("3gp4", "isom", "3gp4"), "video/3gpp"},
		{"3gp5", ftyp("3gp5"), "video/3gpp"},
		{"3g2", ftyp("3g2a", "3g2a"), "video/3gpp2"},
		{"unknown major, compatible isom", ftyp("abcd", "abcd", "isom"), "video/mp4"},
		{"unknown major, compatible qt", ftyp("abcd", "qt  "), "video/quicktime"},
		{"m4a audio", ftyp("M4A ", "M4A ", "mp42", "isom"), ""},
		{"heic image", ftyp("heic", "mif1", "heic"), ""},
		{"avif image", ftyp("avif", "avif", "mif1", "miaf", "iso8"), ""},
		{"no video brand", ftyp("abcd", "efgh"), ""},
		{"ftyp box too small", []byte("\x00\x00\x00\x08ftypisom\x00\x00\x00\x00"), ""},
		{"ftyp cut short", []byte("\x00\x00\x00\x18ftypis"), ""},
		{"legacy quicktime wide+mdat", []byte("\x00\x00\x00\x08wide\x00\x10\x00\x00mdat\x00\x01\x02"), "video/quicktime"},
		{"legacy quicktime moov", []byte("\x00\x00\x01\x00moov\x00\x00\x00\x6cmvhd"), "video/quicktime"},
		{"legacy quicktime bad free", []byte("\x00\x00\x00\x04free\x00\x00\x00\x08mdat"), ""},

		{"webm", ebml("webm", 1), "video/webm"},
		{"matroska", ebml("matroska", 1), "video/x-matroska"},
		{"webm, 8-byte header size", ebml("webm", 8), "video/webm"},
		{"matroska, unknown header size", ebml("matroska", 0), "video/x-matroska"},
		{"matroska, zero-padded doctype", ebml("matroska\x00\x00", 1), "video/x-matroska"},
		{"other EBML document", ebml("dvb", 1), ""},
		{"EBML without doctype", ebml("", 1), ""},
		{"EBML magic only", []byte{0x1a, 0x45, 0xdf, 0xa3}, ""},
		{"EBML header cut short", ebml("webm", 1)[:12], ""},

		{"avi", []byte("RIFF\x00\x10\x00\x00AVI LIST\x00\x00\x01\x00hdrl"), "video/x-msvideo"},
		{"wav", []byte("RIFF\x00\x10\x00\x00WAVEfmt \x10\x00\x00\x00"), ""},

		{"ogg theora", oggPage(theora), "video/ogg"},
		{"ogg vorbis then theora", concat(oggPage(vorbis), oggPage(theora)), "video/ogg"},
		{"ogg skeleton then theora", concat(oggPage("fishead\x00"+string(make([]byte, 56))), oggPage(theora)), "video/ogg"},
		{"ogg vorbis only", concat(oggPage(vorbis), []byte("OggS\x00\x00"), make([]byte, 40)), ""},
		{"ogg opus only", oggPage("OpusHead\x01\x02" + string(make([]byte, 9))), ""},

		{"mpeg-ts", ts(6, 188, 0), "video/mp2t"},
		{"mpeg-ts, three packets", ts(3, 188, 0)[:377], "video/mp2t"},
		{"mpeg-ts, two packets", ts(2, 188, 0), ""},
		{"mpeg-ts, a sync byte missing", tsBroken, ""},
		{"m2ts", ts(6, 192, 4), "video/mp2t"},
		{"all 0x47", bytes.Repeat([]byte{0x47}, 100), ""},

		{"empty", nil, ""},
		{"text", []byte("hello, this is not a video\n"), ""},
		{"html", []byte("<!doctype html><html><body>ftyp</body></html>"), ""},
		{"jpeg", []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"), ""},
		{"png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"), ""},
		{"gif", []byte("GIF89a\x01\x00\x01\x00"), ""},
		{"pdf", []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"), ""},
		{"zip", []byte("PK\x03\x04\x14\x00\x00\x00\x08\x00"), ""},
		{"mp3", []byte("ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00"), ""},
		{"random", random, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Sniff(tt.head)
			if tt.want == "" {
				if !errors.Is(err, ErrNotVideo) || got != "" {
					t.Fatalf("Sniff = %q, %v; want ErrNotVideo", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Sniff = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// FuzzSniff checks that no input panics Sniff and that every answer is
// either a content type or ErrNotVideo.
func FuzzSniff(f *testing.F) {
	for _, seed := range [][]byte{
		ftyp("isom", "isom"), ebml("webm", 1), ebml("matroska", 8),
		oggPage("\x80theora"), ts(3, 188, 0), []byte("RIFF\x00\x00\x00\x00AVI "),
		[]byte("\x00\x00\x00\x08wide\x00\x00\x00\x00mdat"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		ct, err := Sniff(head)
		if (err == nil) == (ct == "") || (err != nil && !errors.Is(err, ErrNotVideo)) {
			t.Fatalf("Sniff = %q, %v", ct, err)
		}
	})
}
