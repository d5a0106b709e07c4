package media

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// SniffLen is how many leading bytes of a file Sniff wants to see. Most
// containers are told by far fewer, but MPEG-TS needs three packets (377
// bytes) and every further byte makes the MPEG-TS and Ogg checks stricter.
const SniffLen = 1024

// container is one kind of file reel accepts.
type container struct {
	name        string // Info.Container
	contentType string // Info.ContentType
	// demuxer is the ffmpeg demuxer forced on the file, so that ffmpeg
	// reads it as the container sniffing saw and never probes its way into
	// another demuxer (a playlist or concat file disguised as a video).
	demuxer string
}

var (
	cMP4  = container{"mp4", "video/mp4", "mov"}
	cMOV  = container{"mov", "video/quicktime", "mov"}
	c3GP  = container{"3gp", "video/3gpp", "mov"}
	c3G2  = container{"3g2", "video/3gpp2", "mov"}
	cWebM = container{"webm", "video/webm", "matroska"}
	cMKV  = container{"matroska", "video/x-matroska", "matroska"}
	cAVI  = container{"avi", "video/x-msvideo", "avi"}
	cTS   = container{"mpegts", "video/mp2t", "mpegts"}
	cOgg  = container{"ogg", "video/ogg", "ogg"}
)

// Sniff looks at the first bytes of a file (SniffLen of them, or the whole
// file if shorter) and returns the content type of its container if it is
// one reel accepts: MP4, QuickTime, 3GPP, WebM, Matroska, AVI, MPEG-TS or
// Ogg with a Theora stream. Anything else is ErrNotVideo, wrapped with a
// reason that is safe to show a client.
//
// Only the bytes count: file names and the client's Content-Type are
// chosen by whoever uploads. Passing Sniff proves the container, not that
// the file plays; Prober.Probe checks that with ffprobe.
func Sniff(head []byte) (contentType string, err error) {
	c, err := sniff(head)
	if err != nil {
		return "", err
	}
	return c.contentType, nil
}

func sniff(head []byte) (container, error) {
	switch {
	case len(head) == 0:
		return container{}, notVideo("the file is empty")
	case len(head) >= 8 && string(head[4:8]) == "ftyp":
		return sniffFtyp(head)
	case hasPrefix(head, "\x1a\x45\xdf\xa3"):
		return sniffEBML(head)
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "AVI ":
		return cAVI, nil
	case hasPrefix(head, "OggS"):
		return sniffOgg(head)
	}
	if sniffTS(head) {
		return cTS, nil
	}
	if sniffLegacyQuickTime(head) {
		return cMOV, nil
	}
	return container{}, notVideo("not a video container reel accepts")
}

// sniffFile sniffs the file at path. Errors other than ErrNotVideo are
// the server's (a missing spool file), not the uploader's.
func sniffFile(path string) (container, error) {
	f, err := os.Open(path)
	if err != nil {
		return container{}, fmt.Errorf("media: %w", err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return container{}, fmt.Errorf("media: %w", err)
	}
	// A FIFO or device would make ffprobe block or read forever; the
	// caller spools uploads to regular files, so this is a bug there.
	if !fi.Mode().IsRegular() {
		return container{}, fmt.Errorf("media: %s is not a regular file", path)
	}
	head := make([]byte, SniffLen)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return container{}, fmt.Errorf("media: read %s: %w", path, err)
	}
	return sniff(head[:n])
}

func notVideo(reason string) error { return fmt.Errorf("%w: %s", ErrNotVideo, reason) }

func hasPrefix(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
}

// notVideoBrands are ISO BMFF major brands of files that are not videos
// though they may list a video brand such as isom among their compatible
// brands: audio (M4A), audiobooks, HEIF/AVIF images and image sequences.
var notVideoBrands = map[string]bool{
	"M4A ": true, "M4B ": true, "M4P ": true, "F4A ": true, "F4B ": true,
	"heic": true, "heix": true, "heim": true, "heis": true, "hevc": true,
	"hevx": true, "hevm": true, "hevs": true, "mif1": true, "msf1": true,
	"avif": true, "avis": true, "jp2 ": true, "crx ": true,
}

// videoBrand reports the container of an ISO BMFF brand that promises
// video-capable MP4 or QuickTime.
func videoBrand(b string) (container, bool) {
	switch b {
	case "qt  ":
		return cMOV, true
	case "isom", "iso2", "iso3", "iso4", "iso5", "iso6", "iso7", "iso8", "iso9",
		"mp41", "mp42", "avc1", "mmp4", "M4V ", "M4VH", "M4VP", "f4v ",
		"dash", "msnv", "MSNV", "XAVC":
		return cMP4, true
	}
	if len(b) == 4 && b[:2] == "3g" { // 3gp4..3gp9, 3gr6, 3gs7, 3ge6, 3gg6, 3g2a...
		if b[2] == '2' {
			return c3G2, true
		}
		return c3GP, true
	}
	return container{}, false
}

// sniffFtyp reads an ISO BMFF ftyp box: size, "ftyp", major brand, minor
// version, then compatible brands until the end of the box.
func sniffFtyp(head []byte) (container, error) {
	if len(head) < 16 {
		return container{}, notVideo("file too short")
	}
	size := binary.BigEndian.Uint32(head[:4])
	if size < 16 {
		return container{}, notVideo("malformed ftyp box")
	}
	major := string(head[8:12])
	if c, ok := videoBrand(major); ok {
		return c, nil
	}
	if notVideoBrands[major] {
		return container{}, notVideo("an audio or image file, not a video")
	}
	end := min(uint64(size), uint64(len(head)))
	for i := uint64(16); i+4 <= end; i += 4 {
		if c, ok := videoBrand(string(head[i : i+4])); ok {
			return c, nil
		}
	}
	return container{}, notVideo("no video brand in the ftyp box")
}

// sniffLegacyQuickTime accepts QuickTime files from before ftyp existed,
// which old cameras still write: top-level atoms of known types up to a
// moov or mdat atom.
func sniffLegacyQuickTime(head []byte) bool {
	for p := 0; p+8 <= len(head); {
		size := uint64(binary.BigEndian.Uint32(head[p:]))
		switch string(head[p+4 : p+8]) {
		case "moov":
			return size >= 8
		case "mdat":
			return true // size 0 (to the end) and 1 (64-bit) are both legal here
		case "wide", "free", "skip", "pnot":
			if size < 8 {
				return false
			}
			p += int(size)
		default:
			return false
		}
	}
	return false
}

// sniffEBML reads the EBML header of a Matroska or WebM file and tells the
// two apart by its DocType element.
func sniffEBML(head []byte) (container, error) {
	p := 4
	size, n, ok := ebmlVint(head[p:], true)
	if !ok {
		return container{}, notVideo("malformed EBML header")
	}
	p += n
	end := len(head)
	if size != ebmlUnknown && size < uint64(end-p) {
		end = p + int(size)
	}
	for p < end {
		id, n, ok := ebmlVint(head[p:end], false)
		if !ok || n > 4 {
			break
		}
		p += n
		size, n, ok := ebmlVint(head[p:end], true)
		if !ok || size == ebmlUnknown || size > uint64(end-p-n) {
			break
		}
		p += n
		if id == 0x4282 { // DocType
			doc := string(head[p : p+int(size)])
			for len(doc) > 0 && doc[len(doc)-1] == 0 { // strings may be zero-padded
				doc = doc[:len(doc)-1]
			}
			switch doc {
			case "webm":
				return cWebM, nil
			case "matroska":
				return cMKV, nil
			}
			return container{}, notVideo(fmt.Sprintf("EBML document type %.32q is not Matroska or WebM", doc))
		}
		p += int(size)
	}
	return container{}, notVideo("EBML header without a document type")
}

// ebmlUnknown is the value of an all-ones size field: "unknown size".
const ebmlUnknown = ^uint64(0)

// ebmlVint decodes an EBML variable-length integer: the count of leading
// zero bits of the first byte gives the length. Element IDs keep the
// length marker bit (mask false); sizes drop it (mask true).
func ebmlVint(b []byte, mask bool) (v uint64, n int, ok bool) {
	if len(b) == 0 || b[0] == 0 {
		return 0, 0, false
	}
	n = 1
	for b[0]&(0x80>>(n-1)) == 0 {
		n++
	}
	if len(b) < n {
		return 0, 0, false
	}
	v = uint64(b[0])
	if mask {
		v &= 0xff >> n
	}
	allOnes := v == 0xff>>n
	for _, c := range b[1:n] {
		v = v<<8 | uint64(c)
		allOnes = allOnes && c == 0xff
	}
	if mask && allOnes {
		return ebmlUnknown, n, true
	}
	return v, n, true
}

// sniffOgg walks the beginning-of-stream pages, which all come first in an
// Ogg file, looking for a video codec's identification header. Ogg with
// only Vorbis, Opus or FLAC is audio.
func sniffOgg(head []byte) (container, error) {
	for p := 0; len(head)-p >= 27 && string(head[p:p+4]) == "OggS" && head[p+4] == 0; {
		if head[p+5]&0x02 == 0 { // no longer a beginning-of-stream page
			break
		}
		segments := int(head[p+26])
		if len(head)-p < 27+segments {
			break
		}
		lacing := head[p+27 : p+27+segments]
		body := p + 27 + segments
		first, total := 0, 0
		done := false
		for _, l := range lacing {
			total += int(l)
			if !done {
				first += int(l)
				done = l < 255
			}
		}
		packet := head[body:min(body+first, len(head))]
		if hasPrefix(packet, "\x80theora") || hasPrefix(packet, "BBCD\x00") { // Theora, Dirac
			return cOgg, nil
		}
		p = body + total
	}
	return container{}, notVideo("Ogg file without a video stream")
}

// sniffTS checks for MPEG transport stream sync bytes: 0x47 at the start of
// every 188-byte packet, or of every 192-byte packet after a 4-byte time
// code (M2TS, from AVCHD cameras). A single 0x47 proves nothing, so every
// packet start in head must match and there must be at least three.
func sniffTS(head []byte) bool {
	for _, layout := range [...]struct{ offset, size int }{{0, 188}, {4, 192}} {
		n := 0
		for i := layout.offset; i < len(head) && head[i] == 0x47; i += layout.size {
			n++
		}
		if n >= 3 && n == (len(head)-layout.offset+layout.size-1)/layout.size {
			return true
		}
	}
	return false
}
