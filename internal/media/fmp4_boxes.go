package media

import (
	"fmt"
	"math/bits"
	"strings"
)

// track is what the index needs of one track of the moov.
type track struct {
	id              uint32
	handler         string // "vide", "soun"...
	timescale       uint32
	codec           string // RFC 6381: "avc1.64001f", "mp4a.40.2"
	width, height   int    // as displayed; video only
	defaultDuration uint32 // trex's default sample duration
}

// moov reads the tracks and their fragment defaults.
func (p *indexer) moov(body []byte) error {
	var trex []struct{ id, duration uint32 }
	fragmented := false
	err := eachBox(body, func(typ string, b []byte) error {
		switch typ {
		case "trak":
			if len(p.tracks) >= maxTracks {
				return badIndex("too many tracks")
			}
			t, err := parseTrak(b)
			if err != nil {
				return err
			}
			p.tracks = append(p.tracks, t)
		case "mvex":
			fragmented = true
			return eachBox(b, func(typ string, b []byte) error {
				if typ == "trex" && len(trex) < maxTracks {
					c := newCursor(b)
					c.fullBox()
					id := c.u32()
					c.skip(4) // default sample description index
					d := c.u32()
					if !c.ok {
						return badIndex("short trex")
					}
					trex = append(trex, struct{ id, duration uint32 }{id, d})
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !fragmented {
		return badIndex("not fragmented")
	}
	for i := range p.tracks {
		t := &p.tracks[i]
		for _, x := range trex {
			if x.id == t.id {
				t.defaultDuration = x.duration
			}
		}
		if t.handler == "vide" && p.video == nil {
			p.video = t
		}
	}
	if p.video == nil {
		return badIndex("no video track")
	}
	if p.video.timescale == 0 {
		return badIndex("no video timescale")
	}
	codecs := []string{p.video.codec}
	for _, t := range p.tracks {
		if t.handler == "soun" {
			codecs = append(codecs, t.codec)
			break
		}
	}
	p.ix.Codecs = strings.Join(codecs, ",")
	p.ix.Width, p.ix.Height = p.video.width, p.video.height
	return nil
}

func parseTrak(b []byte) (track, error) {
	var t track
	err := eachBox(b, func(typ string, b []byte) error {
		switch typ {
		case "tkhd":
			return t.tkhd(b)
		case "mdia":
			return eachBox(b, func(typ string, b []byte) error {
				switch typ {
				case "mdhd":
					c := newCursor(b)
					if v, _ := c.fullBox(); v == 1 {
						c.skip(16)
					} else {
						c.skip(8)
					}
					t.timescale = c.u32()
					if !c.ok {
						return badIndex("short mdhd")
					}
				case "hdlr":
					c := newCursor(b)
					c.fullBox()
					c.skip(4)
					h := c.take(4)
					if !c.ok {
						return badIndex("short hdlr")
					}
					t.handler = string(h)
				case "minf":
					return inBox(b, "stbl", func(b []byte) error {
						return inBox(b, "stsd", t.stsd)
					})
				}
				return nil
			})
		}
		return nil
	})
	return t, err
}

// inBox calls fn with the body of the first box of type typ in b.
func inBox(b []byte, typ string, fn func([]byte) error) error {
	done := false
	return eachBox(b, func(t string, body []byte) error {
		if t != typ || done {
			return nil
		}
		done = true
		return fn(body)
	})
}

// tkhd reads the track id and the displayed size: the width and height
// (16.16 fixed point), turned when the matrix is a quarter turn.
func (t *track) tkhd(b []byte) error {
	c := newCursor(b)
	v, _ := c.fullBox()
	if v == 1 {
		c.skip(16)
	} else {
		c.skip(8)
	}
	t.id = c.u32()
	if v == 1 {
		c.skip(4 + 8)
	} else {
		c.skip(4 + 4)
	}
	c.skip(8 + 2 + 2 + 2 + 2) // reserved, layer, alternate group, volume, reserved
	var m [9]int32
	for i := range m {
		m[i] = c.i32()
	}
	w, h := int(c.u32()>>16), int(c.u32()>>16)
	if !c.ok {
		return badIndex("short tkhd")
	}
	if m[0] == 0 && m[4] == 0 && m[1] != 0 && m[3] != 0 { // a = d = 0: a quarter turn
		w, h = h, w
	}
	t.width, t.height = w, h
	return nil
}

// stsd reads the first sample entry's codec.
func (t *track) stsd(b []byte) error {
	c := newCursor(b)
	c.fullBox()
	c.skip(4) // entry count
	if !c.ok {
		return badIndex("short stsd")
	}
	return inFirstBox(c.rest(), func(typ string, b []byte) error {
		if !validCodecs(typ) || len(typ) != 4 {
			return badIndex("unknown sample entry")
		}
		t.codec = typ
		switch typ {
		case "avc1", "avc3":
			if len(b) < 78 { // a VisualSampleEntry's fields
				return badIndex("short %s", typ)
			}
			return inBox(b[78:], "avcC", func(b []byte) error {
				if len(b) < 4 {
					return badIndex("short avcC")
				}
				t.codec = fmt.Sprintf("%s.%02x%02x%02x", typ, b[1], b[2], b[3])
				return nil
			})
		case "mp4a":
			// An AudioSampleEntry's fields: 28 bytes, 16 or 36 more in
			// QuickTime's sound description versions 1 and 2.
			if len(b) < 28 {
				return badIndex("short mp4a")
			}
			n := 28
			switch int(b[8])<<8 | int(b[9]) {
			case 1:
				n += 16
			case 2:
				n += 36
			}
			if len(b) < n {
				return badIndex("short mp4a")
			}
			t.codec = "mp4a.40.2" // AAC-LC, unless the esds says otherwise
			return inBox(b[n:], "esds", func(b []byte) error {
				if s := esdsCodec(b); s != "" {
					t.codec = s
				}
				return nil
			})
		}
		return nil
	})
}

// inFirstBox calls fn with the first box in b.
func inFirstBox(b []byte, fn func(typ string, body []byte) error) error {
	first := true
	return eachBox(b, func(typ string, body []byte) error {
		if !first {
			return nil
		}
		first = false
		return fn(typ, body)
	})
}

// esdsCodec reads an MPEG-4 elementary stream descriptor into "mp4a.OO.A"
// (RFC 6381: object type indication in hex, audio object type in
// decimal); "" when it cannot.
func esdsCodec(b []byte) string {
	c := newCursor(b)
	c.fullBox()
	tag, body := descriptor(c)
	if tag != 0x03 { // ES_Descriptor
		return ""
	}
	c = newCursor(body)
	c.skip(2) // ES_ID
	flags := c.u8()
	if flags&0x80 != 0 { // streamDependenceFlag
		c.skip(2)
	}
	if flags&0x40 != 0 { // URL_Flag
		c.skip(int(c.u8()))
	}
	if flags&0x20 != 0 { // OCRstreamFlag
		c.skip(2)
	}
	tag, body = descriptor(c)
	if tag != 0x04 || !c.ok { // DecoderConfigDescriptor
		return ""
	}
	c = newCursor(body)
	oti := c.u8()
	c.skip(1 + 3 + 4 + 4) // stream type, buffer size, max and average bit rates
	codec := fmt.Sprintf("mp4a.%02x", oti)
	if tag, asc := descriptor(c); tag == 0x05 && oti == 0x40 && len(asc) > 0 { // AudioSpecificConfig
		aot := int(asc[0] >> 3)
		if aot == 31 && len(asc) > 1 { // escape: 32 + the next six bits
			aot = 32 + int(asc[0]&7)<<3 | int(asc[1]>>5)
		}
		if aot > 0 {
			codec += fmt.Sprintf(".%d", aot)
		}
	}
	if !c.ok {
		return ""
	}
	return codec
}

// descriptor reads one MPEG-4 descriptor: a tag, a size in up to four
// 7-bit groups, and the body.
func descriptor(c *cursor) (tag uint8, body []byte) {
	tag = c.u8()
	n := 0
	for range 4 {
		b := c.u8()
		n = n<<7 | int(b&0x7f)
		if b&0x80 == 0 {
			break
		}
	}
	if !c.ok || n > len(c.b) {
		return 0, nil
	}
	return tag, c.take(n)
}

// moof reads one fragment: its video track's start (tfdt) and duration
// (the trun's sample durations, or the tfhd's or trex's default).
func (p *indexer) moof(body []byte) (Segment, error) {
	found := false
	var start, ticks, samples uint64
	err := eachBox(body, func(typ string, b []byte) error {
		if typ != "traf" {
			return nil
		}
		var (
			id       uint32
			def      uint32
			haveTfhd bool
			tfdt     uint64
			haveTfdt bool
			truns    [][]byte
		)
		err := eachBox(b, func(typ string, b []byte) error {
			c := newCursor(b)
			switch typ {
			case "tfhd":
				_, flags := c.fullBox()
				id = c.u32()
				if flags&0x01 != 0 {
					c.skip(8) // base data offset
				}
				if flags&0x02 != 0 {
					c.skip(4) // sample description index
				}
				if flags&0x08 != 0 {
					def = c.u32()
				}
				if !c.ok {
					return badIndex("short tfhd")
				}
				haveTfhd = true
			case "tfdt":
				if v, _ := c.fullBox(); v == 1 {
					tfdt = c.u64()
				} else {
					tfdt = uint64(c.u32())
				}
				if !c.ok {
					return badIndex("short tfdt")
				}
				haveTfdt = true
			case "trun":
				truns = append(truns, b)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if !haveTfhd {
			return badIndex("traf without tfhd")
		}
		if id != p.video.id {
			return nil
		}
		if found {
			return badIndex("two video trafs in a moof")
		}
		found = true
		if def == 0 {
			def = p.video.defaultDuration
		}
		start = p.nextStart
		if haveTfdt {
			start = tfdt
		}
		for _, b := range truns {
			n, d, err := trunDuration(b, def)
			if err != nil {
				return err
			}
			if samples, err = addTicks(samples, n); err != nil {
				return err
			}
			if ticks, err = addTicks(ticks, d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Segment{}, err
	}
	if !found || ticks == 0 {
		return Segment{}, badIndex("a fragment without video")
	}
	if p.nextStart, err = addTicks(start, ticks); err != nil {
		return Segment{}, err
	}
	if p.ticks, err = addTicks(p.ticks, ticks); err != nil {
		return Segment{}, err
	}
	p.samples += samples // at most 2^32 a trun, 2^12 truns a traf, 2^20 moofs
	ts := float64(p.video.timescale)
	return Segment{Start: float64(start) / ts, Duration: float64(ticks) / ts}, nil
}

// trunDuration is a track run's sample count and duration in ticks: the
// samples' own durations when it has them, else def each.
func trunDuration(b []byte, def uint32) (samples, ticks uint64, err error) {
	c := newCursor(b)
	_, flags := c.fullBox()
	n := uint64(c.u32())
	if flags&0x001 != 0 {
		c.skip(4) // data offset
	}
	if flags&0x004 != 0 {
		c.skip(4) // first sample flags
	}
	if !c.ok {
		return 0, 0, badIndex("short trun")
	}
	fields := bits.OnesCount32(flags & 0xf00) // duration, size, flags, composition offset
	if fields == 0 || flags&0x100 == 0 {
		if fields > 0 && n*uint64(fields)*4 > uint64(len(c.b)) {
			return 0, 0, badIndex("trun longer than its box")
		}
		return n, n * uint64(def), nil // n < 2^32, def < 2^32: no overflow
	}
	if n*uint64(fields)*4 > uint64(len(c.b)) {
		return 0, 0, badIndex("trun longer than its box")
	}
	for range n {
		ticks += uint64(c.u32())
		c.skip(4 * (fields - 1))
	}
	return n, ticks, nil
}
