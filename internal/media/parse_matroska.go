package media

import (
	"encoding/binary"
	"io"
	"math"
	"strings"
)

// Element IDs (with their length marker, as ebmlVint returns them).
const (
	mkvSegment      = 0x18538067
	mkvInfo         = 0x1549A966
	mkvTimecodeScal = 0x2AD7B1
	mkvDuration     = 0x4489
	mkvTracks       = 0x1654AE6B
	mkvTrackEntry   = 0xAE
	mkvTrackType    = 0x83
	mkvCodecID      = 0x86
	mkvVideo        = 0xE0
	mkvPixelWidth   = 0xB0
	mkvPixelHeight  = 0xBA
	mkvProjection   = 0x7670
	mkvCluster      = 0x1F43B675
	mkvEBML         = 0x1A45DFA3
)

// element is an EBML element: its id and payload [start, end); end is -1
// for an element of unknown size.
type element struct {
	id         uint64
	start, end int64
}

// elements calls fn for each element in [off, end). fn returns false to
// stop.
func (r *reader) elements(off, end int64, fn func(e element) (bool, error)) error {
	for off < end {
		if err := r.visit(); err != nil {
			return err
		}
		h, err := r.read(off, int(min(12, end-off)))
		if err != nil {
			return err
		}
		id, n, ok := ebmlVint(h, false)
		if !ok || n > 4 {
			return errGiveUp
		}
		size, m, ok := ebmlVint(h[n:], true)
		if !ok {
			return errGiveUp
		}
		e := element{id: id, start: off + int64(n+m)}
		if size == ebmlUnknown {
			e.end = -1
		} else {
			if size > uint64(end-e.start) {
				return errGiveUp
			}
			e.end = e.start + int64(size)
		}
		more, err := fn(e)
		if err != nil || !more {
			return err
		}
		if e.end < 0 {
			return errGiveUp // only a Segment may be of unknown size here
		}
		off = e.end
	}
	return nil
}

func (r *reader) uint(e element) (uint64, error) {
	n := e.end - e.start
	if n < 0 || n > 8 {
		return 0, errGiveUp
	}
	d, err := r.read(e.start, int(n))
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, c := range d {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

func (r *reader) float(e element) (float64, error) {
	d, err := r.read(e.start, int(e.end-e.start))
	if err != nil {
		return 0, err
	}
	switch len(d) {
	case 4:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(d))), nil
	case 8:
		return math.Float64frombits(binary.BigEndian.Uint64(d)), nil
	}
	return 0, errGiveUp
}

func (r *reader) str(e element) (string, error) {
	n := e.end - e.start
	if n < 0 || n > 64 {
		return "", errGiveUp
	}
	d, err := r.read(e.start, int(n))
	if err != nil {
		return "", err
	}
	for len(d) > 0 && d[len(d)-1] == 0 {
		d = d[:len(d)-1]
	}
	return string(d), nil
}

type mkvTrack struct {
	typ           uint64
	codec         string
	width, height uint64
	projection    bool
}

func parseMatroska(f io.ReaderAt, size int64, info *Info) error {
	r := &reader{r: f, size: size}
	var segment element
	err := r.elements(0, size, func(e element) (bool, error) {
		switch e.id {
		case mkvEBML:
			return true, nil
		case mkvSegment:
			segment = e
			return false, nil
		}
		return false, errGiveUp
	})
	if err != nil || segment.id == 0 {
		return errGiveUp
	}
	if segment.end < 0 {
		segment.end = size
	}
	var (
		scale      uint64 = 1000000
		duration   float64
		haveInfo   bool
		haveTracks bool
		tracks     []mkvTrack
	)
	err = r.elements(segment.start, segment.end, func(e element) (bool, error) {
		switch e.id {
		case mkvInfo:
			haveInfo = true
			return true, r.elements(e.start, e.end, func(c element) (bool, error) {
				var err error
				switch c.id {
				case mkvTimecodeScal:
					scale, err = r.uint(c)
				case mkvDuration:
					duration, err = r.float(c)
				}
				return true, err
			})
		case mkvTracks:
			haveTracks = true
			return true, r.elements(e.start, e.end, func(c element) (bool, error) {
				if c.id != mkvTrackEntry {
					return true, nil
				}
				t, err := r.mkvTrack(c)
				tracks = append(tracks, t)
				return true, err
			})
		case mkvCluster:
			return false, nil // the headers come before the media
		}
		return !(haveInfo && haveTracks), nil
	})
	if err != nil || !haveInfo || !haveTracks {
		return errGiveUp
	}
	video := -1
	for i, t := range tracks {
		switch t.typ {
		case 1:
			if video < 0 {
				video = i
			}
		case 2:
			if info.AudioCodec == "" {
				if t.codec == "" {
					return errGiveUp
				}
				info.AudioCodec = t.codec
			}
		}
	}
	if video < 0 {
		return errGiveUp
	}
	v := tracks[video]
	if v.codec == "" || v.projection || v.width == 0 || v.height == 0 || v.width > math.MaxInt32 || v.height > math.MaxInt32 {
		return errGiveUp
	}
	info.VideoCodec, info.Width, info.Height = v.codec, int(v.width), int(v.height)
	s := duration * float64(scale) / 1e9
	if !(s > 0) || math.IsInf(s, 0) || s > 1e9 {
		return errGiveUp // a live recording without a duration: ffprobe decides
	}
	info.DurationSeconds = s
	return nil
}

func (r *reader) mkvTrack(e element) (mkvTrack, error) {
	var t mkvTrack
	codec := ""
	err := r.elements(e.start, e.end, func(c element) (bool, error) {
		var err error
		switch c.id {
		case mkvTrackType:
			t.typ, err = r.uint(c)
		case mkvCodecID:
			codec, err = r.str(c)
		case mkvVideo:
			err = r.elements(c.start, c.end, func(v element) (bool, error) {
				var err error
				switch v.id {
				case mkvPixelWidth:
					t.width, err = r.uint(v)
				case mkvPixelHeight:
					t.height, err = r.uint(v)
				case mkvProjection:
					t.projection = true
				}
				return true, err
			})
		}
		return true, err
	})
	// A codec of the other kind (a video track of A_OPUS) is not one
	// reel could decode as the track says: ffprobe decides.
	switch {
	case t.typ == 1 && strings.HasPrefix(codec, "V_"), t.typ == 2 && strings.HasPrefix(codec, "A_"):
		t.codec = mkvCodecs[codec]
	}
	return t, err
}

// ffmpeg's names for Matroska codec ids.
var mkvCodecs = map[string]string{
	"V_MPEG4/ISO/AVC": "h264", "V_MPEGH/ISO/HEVC": "hevc", "V_VP8": "vp8", "V_VP9": "vp9", "V_AV1": "av1",
	"V_MPEG4/ISO/ASP": "mpeg4", "V_MPEG4/ISO/SP": "mpeg4", "V_MPEG4/ISO/AP": "mpeg4",
	"V_MPEG2": "mpeg2video", "V_MPEG1": "mpeg1video", "V_THEORA": "theora", "V_MJPEG": "mjpeg",
	"A_OPUS": "opus", "A_VORBIS": "vorbis", "A_AAC": "aac", "A_AAC/MPEG4/LC": "aac", "A_AAC/MPEG2/LC": "aac",
	"A_MPEG/L3": "mp3", "A_MPEG/L2": "mp2", "A_AC3": "ac3", "A_EAC3": "eac3", "A_FLAC": "flac",
}
