package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// Index is where the parts of a rendition file are, as its HLS playlist
// addresses them by byte range: the init segment (ftyp and moov), then the
// media segments, one per fragment (moof, mdat, and any box between the
// init segment or the previous fragment and its moof, such as the sidx
// before the first), which together cover the file to its end or to an
// mfra.
type Index struct {
	Size     int64 // of the file
	Init     Range
	Segments []Segment
	// Codecs is the RFC 6381 codecs string of the tracks, video then
	// audio: "avc1.64001f,mp4a.40.2".
	Codecs string
	// Width and Height are the video as displayed (the track's rotation
	// applied).
	Width, Height int
	// FrameRate is the video's samples per second over its duration.
	FrameRate float64
	// Duration is the segments' total, in seconds.
	Duration float64
}

// Range is a span of bytes in a file.
type Range struct{ Offset, Length int64 }

// Segment is one media segment: its bytes, and its start and length in
// seconds of the video track.
type Segment struct {
	Range
	Start, Duration float64
}

// ErrBadIndex is returned, wrapped with a reason, for a file that is not a
// fragmented MP4 that Index understands.
var ErrBadIndex = errors.New("media: not an indexable fragmented MP4")

func badIndex(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBadIndex, fmt.Sprintf(format, a...))
}

// Bounds on what ParseIndex reads: the file is ours, but a damaged one
// must fail, not exhaust memory.
const (
	maxTopBoxes = 1 << 20 // at about three per 4 s fragment, weeks of video
	maxMoov     = 4 << 20 // a fragmented file's moov holds no sample tables: a few KiB
	maxMoof     = 4 << 20 // a fragment's sample table: about 16 bytes a sample
	maxChildren = 1 << 12 // boxes inside one box
	maxTracks   = 16
)

// IndexFile indexes the rendition file at path.
func IndexFile(path string) (*Index, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	return ParseIndex(f, fi.Size())
}

// ParseIndex indexes a rendition file of size bytes read from r. It reads
// the top-level box headers, the moov and each moof, never the media
// data, and trusts no size it reads.
func ParseIndex(r io.ReaderAt, size int64) (*Index, error) {
	p := indexer{r: r, size: size, ix: &Index{Size: size}}
	if err := p.walk(); err != nil {
		return nil, err
	}
	return p.ix, nil
}

type indexer struct {
	r      io.ReaderAt
	size   int64
	ix     *Index
	tracks []track
	video  *track
	// The fragments read so far.
	samples   uint64 // video samples
	ticks     uint64 // video duration, in the video track's timescale
	nextStart uint64 // where the next fragment starts without a tfdt
}

// walk reads the top-level boxes in order.
func (p *indexer) walk() error {
	var (
		off       int64
		pending   = int64(-1) // start of the boxes since the last mdat that precede a moof
		open      bool        // a segment has its moof but no mdat yet
		tail      = p.size
		boxes     int
		afterMoov bool
	)
	for off < p.size {
		if boxes++; boxes > maxTopBoxes {
			return badIndex("too many boxes")
		}
		h, err := p.header(off)
		if err != nil {
			return err
		}
		end := off + h.size
		switch {
		case boxes == 1 && h.typ != "ftyp":
			return badIndex("no ftyp first")
		case h.typ == "moov":
			if afterMoov {
				return badIndex("two moov")
			}
			body, err := p.read(off+h.hdr, h.size-h.hdr, maxMoov)
			if err != nil {
				return err
			}
			if err := p.moov(body); err != nil {
				return err
			}
			p.ix.Init = Range{0, end}
			afterMoov = true
		case h.typ == "moof":
			if !afterMoov {
				return badIndex("moof before moov")
			}
			if open {
				return badIndex("moof without mdat")
			}
			body, err := p.read(off+h.hdr, h.size-h.hdr, maxMoof)
			if err != nil {
				return err
			}
			seg, err := p.moof(body)
			if err != nil {
				return err
			}
			start := off
			switch {
			case len(p.ix.Segments) == 0:
				start = p.ix.Init.Length // the boxes between moov and moof (the sidx) go with the first
			case pending >= 0:
				start = pending
			}
			seg.Offset = start
			p.ix.Segments = append(p.ix.Segments, seg)
			open, pending = true, -1
		case h.typ == "mdat":
			if !open {
				if len(p.ix.Segments) == 0 {
					return badIndex("mdat before moof")
				}
				return badIndex("two mdat for one moof")
			}
			open = false
		case h.typ == "mfra":
			// The random-access index at the end: no part of any segment.
			tail = off
			end = p.size
		default: // sidx, styp, free, emsg...: go with the next fragment
			if afterMoov && !open && pending < 0 {
				pending = off
			}
		}
		off = end
	}
	switch {
	case !afterMoov:
		return badIndex("no moov")
	case len(p.ix.Segments) == 0:
		return badIndex("no fragments")
	case open:
		return badIndex("the last moof has no mdat")
	}
	// Each segment runs to the next one's start; the last to the mfra or
	// the end.
	segs := p.ix.Segments
	for i := range segs {
		next := tail
		if i+1 < len(segs) {
			next = segs[i+1].Offset
		}
		segs[i].Length = next - segs[i].Offset
	}
	ts := float64(p.video.timescale)
	p.ix.Duration = float64(p.ticks) / ts
	if p.ticks > 0 {
		p.ix.FrameRate = float64(p.samples) / p.ix.Duration
	}
	return nil
}

// boxHeader is a box's type, total size and header size.
type boxHeader struct {
	typ       string
	size, hdr int64
}

// header reads the header of the top-level box at off.
func (p *indexer) header(off int64) (boxHeader, error) {
	var b [16]byte
	n := int64(16)
	if p.size-off < n {
		n = p.size - off
	}
	if n < 8 {
		return boxHeader{}, badIndex("truncated box at %d", off)
	}
	if _, err := p.r.ReadAt(b[:n], off); err != nil && !errors.Is(err, io.EOF) {
		return boxHeader{}, fmt.Errorf("media: read index: %w", err)
	}
	size, hdr, err := boxSize(b[:n], uint64(p.size-off))
	if err != nil {
		return boxHeader{}, fmt.Errorf("%w at %d", err, off)
	}
	return boxHeader{typ: string(b[4:8]), size: int64(size), hdr: int64(hdr)}, nil
}

// boxSize reads the size of the box whose first bytes (8, or 16 for a
// 64-bit size) are b, with room bytes left for it, and checks it fits.
func boxSize(b []byte, room uint64) (size, hdr uint64, err error) {
	size, hdr = uint64(binary.BigEndian.Uint32(b)), 8
	switch size {
	case 0: // to the end
		size = room
	case 1:
		if len(b) < 16 {
			return 0, 0, badIndex("truncated box header")
		}
		size, hdr = binary.BigEndian.Uint64(b[8:16]), 16
	}
	if size < hdr || size > room {
		return 0, 0, badIndex("box size %d out of bounds", size)
	}
	return size, hdr, nil
}

// read reads n bytes at off, refusing more than limit.
func (p *indexer) read(off, n int64, limit int) ([]byte, error) {
	if n > int64(limit) {
		return nil, badIndex("a box of %d bytes is too large", n)
	}
	b := make([]byte, n)
	if _, err := p.r.ReadAt(b, off); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, badIndex("truncated")
		}
		return nil, fmt.Errorf("media: read index: %w", err)
	}
	return b, nil
}

// eachBox calls fn for each box packed in b, stopping at fn's first
// error.
func eachBox(b []byte, fn func(typ string, body []byte) error) error {
	for n := 0; len(b) > 0; n++ {
		if n >= maxChildren {
			return badIndex("too many boxes in a box")
		}
		if len(b) < 8 {
			return badIndex("truncated box")
		}
		size, hdr, err := boxSize(b[:min(len(b), 16)], uint64(len(b)))
		if err != nil {
			return err
		}
		if err := fn(string(b[4:8]), b[hdr:size]); err != nil {
			return err
		}
		b = b[size:]
	}
	return nil
}

// cursor reads big-endian fields from a box body; once a read runs past
// the end, every read returns zero and ok turns false.
type cursor struct {
	b  []byte
	ok bool
}

func newCursor(b []byte) *cursor { return &cursor{b: b, ok: true} }

func (c *cursor) take(n int) []byte {
	if !c.ok || len(c.b) < n {
		c.ok, c.b = false, nil
		return make([]byte, n)
	}
	v := c.b[:n]
	c.b = c.b[n:]
	return v
}

func (c *cursor) skip(n int)   { c.take(n) }
func (c *cursor) u8() uint8    { return c.take(1)[0] }
func (c *cursor) u16() uint16  { return binary.BigEndian.Uint16(c.take(2)) }
func (c *cursor) u32() uint32  { return binary.BigEndian.Uint32(c.take(4)) }
func (c *cursor) u64() uint64  { return binary.BigEndian.Uint64(c.take(8)) }
func (c *cursor) i32() int32   { return int32(c.u32()) }
func (c *cursor) rest() []byte { b := c.b; c.b = nil; return b }
func (c *cursor) fullBox() (version uint8, flags uint32) {
	v := c.u32()
	return uint8(v >> 24), v & 0xffffff
}

// addTicks adds b to a, or reports an overflow.
func addTicks(a, b uint64) (uint64, error) {
	if b > math.MaxUint64-a {
		return 0, badIndex("durations overflow")
	}
	return a + b, nil
}
