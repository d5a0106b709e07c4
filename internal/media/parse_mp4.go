package media

import (
	"encoding/binary"
	"io"
	"math"
)

// boxSpan is an ISO BMFF box: its type and payload [start, end).
type boxSpan struct {
	typ        string
	start, end int64
}

// boxes calls fn for each box in [off, end).
func (r *reader) boxes(off, end int64, fn func(b boxSpan) error) error {
	for off < end {
		if err := r.visit(); err != nil {
			return err
		}
		if end-off < 8 {
			return errGiveUp
		}
		h, err := r.read(off, 8)
		if err != nil {
			return err
		}
		size := int64(binary.BigEndian.Uint32(h))
		typ := string(h[4:8])
		hdr := int64(8)
		switch size {
		case 0: // to the end of the enclosing space
			size = end - off
		case 1: // 64-bit size follows
			h, err := r.read(off+8, 8)
			if err != nil {
				return err
			}
			large := binary.BigEndian.Uint64(h)
			if large > math.MaxInt64 {
				return errGiveUp
			}
			size, hdr = int64(large), 16
		}
		if size < hdr || size > end-off {
			return errGiveUp
		}
		if err := fn(boxSpan{typ: typ, start: off + hdr, end: off + size}); err != nil {
			return err
		}
		off += size
	}
	return nil
}

// child returns the first box of type typ in b, or errGiveUp.
func (r *reader) child(b boxSpan, typ string) (boxSpan, error) {
	var found boxSpan
	err := r.boxes(b.start, b.end, func(c boxSpan) error {
		if c.typ == typ && found.typ == "" {
			found = c
		}
		return nil
	})
	if err != nil {
		return boxSpan{}, err
	}
	if found.typ == "" {
		return boxSpan{}, errGiveUp
	}
	return found, nil
}

// path follows a chain of child box types from b.
func (r *reader) path(b boxSpan, types ...string) (boxSpan, error) {
	var err error
	for _, t := range types {
		if b, err = r.child(b, t); err != nil {
			return boxSpan{}, err
		}
	}
	return b, nil
}

// movTrack is what parseMOV keeps of a trak box.
type movTrack struct {
	handler string // vide, soun...
	codec   string // ffmpeg's name; "" when unknown
	width   int
	height  int
	rotated bool // by 90 or 270 degrees
	seconds float64
}

func parseMOV(f io.ReaderAt, size int64, info *Info) error {
	r := &reader{r: f, size: size}
	var moov boxSpan
	err := r.boxes(0, size, func(b boxSpan) error {
		if b.typ == "moov" && moov.typ == "" {
			moov = b
		}
		return nil
	})
	if err != nil || moov.typ == "" {
		return errGiveUp
	}
	var (
		movieSeconds float64
		tracks       []movTrack
	)
	err = r.boxes(moov.start, moov.end, func(b boxSpan) error {
		switch b.typ {
		case "mvhd":
			s, err := r.fullDuration(b, 12, 20)
			if err != nil {
				return err
			}
			movieSeconds = s
		case "mvex":
			// Fragmented: the duration is in the fragments.
			return errGiveUp
		case "trak":
			t, err := r.track(b)
			if err != nil {
				return err
			}
			tracks = append(tracks, t)
		}
		return nil
	})
	if err != nil {
		return err
	}
	video := -1
	for i, t := range tracks {
		switch t.handler {
		case "vide":
			if video < 0 {
				video = i
			}
		case "soun":
			if info.AudioCodec == "" {
				if t.codec == "" {
					return errGiveUp
				}
				info.AudioCodec = t.codec
			}
		}
	}
	if video < 0 {
		return errGiveUp // audio only, or something else: ffprobe says
	}
	v := tracks[video]
	if v.codec == "" || v.width <= 0 || v.height <= 0 {
		return errGiveUp
	}
	info.VideoCodec, info.Width, info.Height = v.codec, v.width, v.height
	if v.rotated {
		info.Width, info.Height = v.height, v.width
	}
	info.DurationSeconds = movieSeconds
	if info.DurationSeconds == 0 {
		for _, t := range tracks {
			info.DurationSeconds = max(info.DurationSeconds, t.seconds)
		}
	}
	if info.DurationSeconds == 0 {
		return errGiveUp
	}
	return nil
}

// fullDuration reads timescale and duration from a full box (mvhd, mdhd):
// at v0Off (32-bit fields) or v1Off (32-bit timescale, 64-bit duration)
// after the version byte.
func (r *reader) fullDuration(b boxSpan, v0Off, v1Off int64) (float64, error) {
	h, err := r.read(b.start, 1)
	if err != nil {
		return 0, err
	}
	var scale, dur uint64
	switch h[0] {
	case 0:
		if b.start+v0Off+8 > b.end {
			return 0, errGiveUp
		}
		d, err := r.read(b.start+v0Off, 8)
		if err != nil {
			return 0, err
		}
		scale, dur = uint64(binary.BigEndian.Uint32(d)), uint64(binary.BigEndian.Uint32(d[4:]))
		if dur == math.MaxUint32 {
			dur = 0 // "unknown"
		}
	case 1:
		if b.start+v1Off+12 > b.end {
			return 0, errGiveUp
		}
		d, err := r.read(b.start+v1Off, 12)
		if err != nil {
			return 0, err
		}
		scale, dur = uint64(binary.BigEndian.Uint32(d)), binary.BigEndian.Uint64(d[4:])
		if dur == math.MaxUint64 {
			dur = 0
		}
	default:
		return 0, errGiveUp
	}
	if scale == 0 {
		return 0, errGiveUp
	}
	s := float64(dur) / float64(scale)
	if math.IsInf(s, 0) || math.IsNaN(s) || s > 1e9 {
		return 0, errGiveUp
	}
	return s, nil
}

func (r *reader) track(trak boxSpan) (movTrack, error) {
	var t movTrack
	tkhd, err := r.child(trak, "tkhd")
	if err != nil {
		return t, err
	}
	if t.rotated, err = r.rotation(tkhd); err != nil {
		return t, err
	}
	mdia, err := r.child(trak, "mdia")
	if err != nil {
		return t, err
	}
	hdlr, err := r.child(mdia, "hdlr")
	if err != nil {
		return t, err
	}
	if hdlr.end-hdlr.start < 12 {
		return t, errGiveUp
	}
	h, err := r.read(hdlr.start+8, 4)
	if err != nil {
		return t, err
	}
	t.handler = string(h)
	if t.handler != "vide" && t.handler != "soun" {
		return t, nil // text, timecode, hint, metadata: not described
	}
	if mdhd, err := r.child(mdia, "mdhd"); err == nil {
		if t.seconds, err = r.fullDuration(mdhd, 12, 20); err != nil {
			return t, err
		}
	}
	stsd, err := r.path(mdia, "minf", "stbl", "stsd")
	if err != nil {
		return t, err
	}
	// Full box header, entry count, then the first sample entry.
	if stsd.end-stsd.start < 16 {
		return t, errGiveUp
	}
	var entry boxSpan
	if err := r.boxes(stsd.start+8, stsd.end, func(b boxSpan) error {
		if entry.typ == "" {
			entry = b
		}
		return nil
	}); err != nil || entry.typ == "" {
		return t, errGiveUp
	}
	if t.handler == "vide" {
		// VisualSampleEntry: 6 reserved, data reference index, 16 bytes
		// of pre_defined and reserved, then width and height.
		if entry.end-entry.start < 78 {
			return t, errGiveUp
		}
		d, err := r.read(entry.start+24, 4)
		if err != nil {
			return t, err
		}
		t.width, t.height = int(binary.BigEndian.Uint16(d)), int(binary.BigEndian.Uint16(d[2:]))
		t.codec = videoCodecs[entry.typ]
		if entry.typ == "mp4v" {
			t.codec = r.esdsCodec(boxSpan{typ: entry.typ, start: entry.start + 78, end: entry.end}, mpeg4VideoTypes)
		}
		return t, nil
	}
	t.codec = audioCodecs[entry.typ]
	if entry.typ == "mp4a" {
		// AudioSampleEntry: 28 bytes; QuickTime's version 1 adds 16 and
		// version 2 adds 36.
		if entry.end-entry.start < 28 {
			return t, errGiveUp
		}
		d, err := r.read(entry.start+8, 2)
		if err != nil {
			return t, err
		}
		skip := int64(28)
		switch binary.BigEndian.Uint16(d) {
		case 0:
		case 1:
			skip += 16
		case 2:
			skip += 36
		default:
			return t, errGiveUp
		}
		if entry.start+skip > entry.end {
			return t, errGiveUp
		}
		t.codec = r.esdsCodec(boxSpan{typ: entry.typ, start: entry.start + skip, end: entry.end}, mpeg4AudioTypes)
	}
	return t, nil
}

// rotation reads the matrix of a tkhd box and reports a quarter turn.
func (r *reader) rotation(tkhd boxSpan) (bool, error) {
	h, err := r.read(tkhd.start, 1)
	if err != nil {
		return false, err
	}
	// version/flags, times, track id, reserved, duration, reserved (8),
	// layer, alternate group, volume, reserved: then the matrix.
	off := int64(4 + 4 + 4 + 4 + 4 + 4 + 8 + 8)
	if h[0] == 1 {
		off += 12
	}
	if tkhd.start+off+36 > tkhd.end {
		return false, errGiveUp
	}
	m, err := r.read(tkhd.start+off, 36)
	if err != nil {
		return false, err
	}
	a := int32(binary.BigEndian.Uint32(m[0:]))
	b := int32(binary.BigEndian.Uint32(m[4:]))
	c := int32(binary.BigEndian.Uint32(m[12:]))
	d := int32(binary.BigEndian.Uint32(m[16:]))
	switch {
	case b == 0 && c == 0 && a != 0 && d != 0:
		return false, nil // identity, flips, half turn
	case a == 0 && d == 0 && b != 0 && c != 0:
		return true, nil
	}
	return false, errGiveUp // an odd angle: let ffprobe work it out
}

// esdsCodec finds the esds box among the children in b and names the
// codec its objectTypeIndication stands for ("" when unknown).
func (r *reader) esdsCodec(b boxSpan, names map[byte]string) string {
	esds, err := r.child(b, "esds")
	if err != nil {
		// QuickTime nests it in a wave box.
		esds, err = r.path(b, "wave", "esds")
	}
	if err != nil || esds.end-esds.start < 4 {
		return ""
	}
	n := min(esds.end-esds.start-4, 64)
	d, err := r.read(esds.start+4, int(n))
	if err != nil {
		return ""
	}
	// ES_Descriptor (tag 3): ES_ID, flags and their optional fields, then
	// the DecoderConfigDescriptor (tag 4) whose first byte is the type.
	p, ok := esDescriptor(d, 0, 3)
	if !ok || p+3 > len(d) {
		return ""
	}
	flags := d[p+2]
	p += 3
	if flags&0x80 != 0 {
		p += 2
	}
	if flags&0x40 != 0 {
		if p >= len(d) {
			return ""
		}
		p += 1 + int(d[p])
	}
	if flags&0x20 != 0 {
		p += 2
	}
	p, ok = esDescriptor(d, p, 4)
	if !ok || p >= len(d) {
		return ""
	}
	return names[d[p]]
}

// esDescriptor checks for an MPEG-4 descriptor with tag at p and returns
// where its body starts.
func esDescriptor(d []byte, p int, tag byte) (int, bool) {
	if p >= len(d) || d[p] != tag {
		return 0, false
	}
	p++
	for i := 0; i < 4; i++ { // the size: up to 4 bytes of 7 bits
		if p >= len(d) {
			return 0, false
		}
		more := d[p]&0x80 != 0
		p++
		if !more {
			return p, true
		}
	}
	return 0, false
}

// ffmpeg's names for sample entry types.
var videoCodecs = map[string]string{
	"avc1": "h264", "avc3": "h264", "hvc1": "hevc", "hev1": "hevc", "vp08": "vp8", "vp09": "vp9",
	"av01": "av1", "jpeg": "mjpeg", "mjpa": "mjpeg", "s263": "h263", "h263": "h263",
	"apch": "prores", "apcn": "prores", "apcs": "prores", "apco": "prores", "ap4h": "prores",
}

var audioCodecs = map[string]string{
	"Opus": "opus", "ac-3": "ac3", "ec-3": "eac3", "fLaC": "flac", "alac": "alac",
	".mp3": "mp3", "samr": "amr_nb", "sawb": "amr_wb",
}

// MPEG-4 object types (ISO/IEC 14496-1) by ffmpeg's names.
var (
	mpeg4VideoTypes = map[byte]string{
		0x20: "mpeg4", 0x21: "h264", 0x60: "mpeg2video", 0x61: "mpeg2video", 0x62: "mpeg2video",
		0x63: "mpeg2video", 0x64: "mpeg2video", 0x65: "mpeg2video", 0x6a: "mpeg1video", 0x6c: "mjpeg",
	}
	mpeg4AudioTypes = map[byte]string{
		0x40: "aac", 0x66: "aac", 0x67: "aac", 0x68: "aac", 0x69: "mp3", 0x6b: "mp3",
		0xa5: "ac3", 0xa6: "eac3", 0xdd: "vorbis",
	}
)
