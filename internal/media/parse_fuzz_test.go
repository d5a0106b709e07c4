package media

import (
	"bytes"
	"io"
	"math"
	"testing"
)

// countingReader counts what a parser reads.
type countingReader struct {
	r            io.ReaderAt
	reads, bytes int
}

func (c *countingReader) ReadAt(b []byte, off int64) (int, error) {
	c.reads++
	c.bytes += len(b)
	return c.r.ReadAt(b, off)
}

// maxParseReads bounds the reads of one parse: a few per box or element
// visited, and at most maxVisits visits whatever the file says.
const maxParseReads = 8 * maxVisits

// knownCodecs are the codec names the Go readers may give, by kind: those
// of their tables, and nothing else.
func knownCodecs() (video, audio map[string]bool) {
	video, audio = map[string]bool{}, map[string]bool{}
	for _, v := range videoCodecs {
		video[v] = true
	}
	for _, v := range mpeg4VideoTypes {
		video[v] = true
	}
	for _, v := range audioCodecs {
		audio[v] = true
	}
	for _, v := range mpeg4AudioTypes {
		audio[v] = true
	}
	for id, v := range mkvCodecs {
		if id[0] == 'V' {
			video[v] = true
		} else {
			audio[v] = true
		}
	}
	return video, audio
}

// FuzzParse feeds arbitrary bytes to the Go readers of MP4-family and
// Matroska headers (parse.go), as both: whatever they are given, they
// return without panicking after a bounded number of small reads, and
// whatever they accept is what Probe promises (a video codec they know
// as a video codec, an audio codec they know as one or none, a positive
// picture size and a positive, finite duration), the same on a second
// read. Seeds: testdata/fuzz/FuzzParse, tiny clips from ffmpeg of every
// container and track layout the readers accept.
func FuzzParse(f *testing.F) {
	f.Add([]byte{})
	f.Add(ftyp("isom", "isom"))
	f.Add(ebml("webm", 1))
	videoNames, audioNames := knownCodecs()
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, c := range []container{cMP4, cWebM} {
			cr := &countingReader{r: bytes.NewReader(b)}
			info, ok := parseContainer(cr, int64(len(b)), c)
			if cr.reads > maxParseReads || cr.bytes > cr.reads*len(reader{}.buf) {
				t.Fatalf("%s: %d reads of %d bytes for %d bytes of input", c.demuxer, cr.reads, cr.bytes, len(b))
			}
			if !ok {
				if info != (Info{}) {
					t.Fatalf("%s: refused, yet returned %+v", c.demuxer, info)
				}
				continue
			}
			switch {
			case info.Container != c.name || info.ContentType != c.contentType:
				t.Fatalf("%s: container %q %q", c.demuxer, info.Container, info.ContentType)
			case !videoNames[info.VideoCodec]:
				t.Fatalf("%s: video codec %q is not a video codec of the tables", c.demuxer, info.VideoCodec)
			case info.AudioCodec != "" && !audioNames[info.AudioCodec]:
				t.Fatalf("%s: audio codec %q is not an audio codec of the tables", c.demuxer, info.AudioCodec)
			case info.Width <= 0 || info.Height <= 0 || info.Width > math.MaxInt32 || info.Height > math.MaxInt32:
				t.Fatalf("%s: picture %d×%d", c.demuxer, info.Width, info.Height)
			case !(info.DurationSeconds > 0) || math.IsInf(info.DurationSeconds, 0):
				t.Fatalf("%s: duration %v", c.demuxer, info.DurationSeconds)
			}
			again, ok := parseContainer(bytes.NewReader(b), int64(len(b)), c)
			if !ok || again != info {
				t.Fatalf("%s: a second read gave %+v, %v; the first %+v", c.demuxer, again, ok, info)
			}
		}
	})
}
