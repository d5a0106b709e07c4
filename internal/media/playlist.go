package media

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// hlsVersion is the playlists' EXT-X-VERSION: 7 covers EXT-X-MAP in a
// media playlist that is not I-frames only (6) and byte ranges (4).
const hlsVersion = 7

// MediaPlaylist writes the HLS media playlist of one rendition file: its
// init segment (EXT-X-MAP) and each fragment as a byte range of the file
// named by uri, a relative URI (the playlist's neighbour, so that one
// token in a URL's path covers both).
func MediaPlaylist(uri string, ix *Index) ([]byte, error) {
	if !validName(uri) {
		return nil, fmt.Errorf("media: bad playlist URI %q", uri)
	}
	if ix == nil || len(ix.Segments) == 0 {
		return nil, errors.New("media: no segments")
	}
	target := 1
	for _, s := range ix.Segments {
		// A segment's duration rounded to the nearest second must not
		// exceed the target duration (RFC 8216, 4.3.3.1).
		target = max(target, int(math.Round(s.Duration)))
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-TARGETDURATION:%d\n", hlsVersion, target)
	b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s\",BYTERANGE=\"%d@%d\"\n", uri, ix.Init.Length, ix.Init.Offset)
	for _, s := range ix.Segments {
		fmt.Fprintf(&b, "#EXTINF:%s,\n#EXT-X-BYTERANGE:%d@%d\n%s\n", decimal(s.Duration), s.Length, s.Offset, uri)
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return b.Bytes(), nil
}

// Variant is one rendition as the master playlist lists it.
type Variant struct {
	// URI is the rendition's media playlist, relative to the master.
	URI string
	// Bandwidth is the highest rate of any segment and AverageBandwidth
	// the rate of the whole, bits per second.
	Bandwidth, AverageBandwidth int64
	Width, Height               int
	Codecs                      string
	FrameRate                   float64
}

// Variant describes the rendition indexed as ix, whose media playlist is
// uri: rates from its segments' sizes and durations.
func (ix *Index) Variant(uri string) Variant {
	v := Variant{URI: uri, Width: ix.Width, Height: ix.Height, Codecs: ix.Codecs, FrameRate: ix.FrameRate}
	var bytes int64
	for _, s := range ix.Segments {
		bytes += s.Length
		if s.Duration > 0 {
			v.Bandwidth = max(v.Bandwidth, int64(math.Ceil(float64(s.Length)*8/s.Duration)))
		}
	}
	if ix.Duration > 0 {
		v.AverageBandwidth = int64(math.Ceil(float64(bytes) * 8 / ix.Duration))
	}
	return v
}

// MasterPlaylist writes the HLS master playlist of the variants, in the
// order given (players start with the first).
func MasterPlaylist(variants []Variant) ([]byte, error) {
	if len(variants) == 0 {
		return nil, errors.New("media: no variants")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-INDEPENDENT-SEGMENTS\n", hlsVersion)
	for _, v := range variants {
		if !validName(v.URI) {
			return nil, fmt.Errorf("media: bad playlist URI %q", v.URI)
		}
		if !validCodecs(v.Codecs) {
			return nil, fmt.Errorf("media: bad codecs %q", v.Codecs)
		}
		if v.Bandwidth <= 0 {
			return nil, fmt.Errorf("media: variant %q has no bandwidth", v.URI)
		}
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d", v.Bandwidth)
		if v.AverageBandwidth > 0 {
			fmt.Fprintf(&b, ",AVERAGE-BANDWIDTH=%d", v.AverageBandwidth)
		}
		if v.Width > 0 && v.Height > 0 {
			fmt.Fprintf(&b, ",RESOLUTION=%dx%d", v.Width, v.Height)
		}
		if v.Codecs != "" {
			fmt.Fprintf(&b, ",CODECS=\"%s\"", v.Codecs)
		}
		if v.FrameRate > 0 {
			fmt.Fprintf(&b, ",FRAME-RATE=%s", decimal(v.FrameRate))
		}
		fmt.Fprintf(&b, "\n%s\n", v.URI)
	}
	return b.Bytes(), nil
}

// validCodecs is whether s can stand in a quoted CODECS attribute: the
// characters of RFC 6381 codec names and the commas between them.
func validCodecs(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == ',') {
			return false
		}
	}
	return true
}

// decimal writes a duration or rate with three decimals, as HLS's
// decimal-floating-point (no exponent).
func decimal(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) }
