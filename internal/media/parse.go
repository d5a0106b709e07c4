package media

import (
	"errors"
	"io"
	"os"
)

// Reading the headers of the common containers in Go spares ffprobe, whose
// start alone (loading its shared libraries) is most of what probing an
// upload with it costs. The parsers here read MP4 and its QuickTime and
// 3GPP relatives (the moov box) and Matroska and WebM (the Info and Tracks
// elements) and fill Info as ffprobe would, with ffmpeg's codec names. They are deliberately
// narrow: whatever they do not fully understand (a codec they have no name
// for, a fragmented MP4 without a duration, a live WebM without one, a
// rotation stored in Matroska, a malformed or truncated structure) makes
// them give up, and Probe asks ffprobe, which remains the judge of every
// file they do not accept. Nothing they accept lacks what ffprobe would
// require: a video track with a picture size, and a duration.
//
// Uploads are hostile input: every size is checked against its parent's
// bounds and the file's size, reads are small and bounded, and the number
// of boxes or elements visited is capped.

// errGiveUp is the parsers' only error: "ask ffprobe".
var errGiveUp = errors.New("media: container not understood")

// maxVisits bounds the boxes or elements a parser looks at.
const maxVisits = 4096

// parseFile reads the container c of the file at path. ok is false when
// ffprobe must decide.
func parseFile(path string, c container) (Info, bool) {
	f, err := os.Open(path)
	if err != nil {
		return Info{}, false
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return Info{}, false
	}
	return parseContainer(f, fi.Size(), c)
}

// parseContainer reads the container c from the size bytes of f (FuzzParse
// checks it on arbitrary bytes).
func parseContainer(f io.ReaderAt, size int64, c container) (Info, bool) {
	info := Info{Container: c.name, ContentType: c.contentType}
	var err error
	switch c.demuxer {
	case "mov":
		err = parseMOV(f, size, &info)
	case "matroska":
		err = parseMatroska(f, size, &info)
	default:
		err = errGiveUp
	}
	if err != nil {
		return Info{}, false
	}
	return info, true
}

// reader reads small pieces of the file at offsets, counting visits.
type reader struct {
	r      io.ReaderAt
	size   int64
	visits int
	buf    [64]byte
}

// read returns n bytes (0 <= n <= 64) at off, or errGiveUp: n comes from
// the file (an element of unknown size gives a negative one).
func (r *reader) read(off int64, n int) ([]byte, error) {
	if n < 0 || n > len(r.buf) || off < 0 || off+int64(n) > r.size {
		return nil, errGiveUp
	}
	b := r.buf[:n]
	if _, err := r.r.ReadAt(b, off); err != nil {
		return nil, errGiveUp
	}
	return b, nil
}

func (r *reader) visit() error {
	r.visits++
	if r.visits > maxVisits {
		return errGiveUp
	}
	return nil
}
