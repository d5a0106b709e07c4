package loadtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// What a player needs of HLS playlists, read from the client's side: the
// variants of a master playlist, and the init section and segments of a
// media playlist, each a byte range of a file (EXT-X-BYTERANGE) or a
// whole file. Only what reel and a static copy of its files serve is
// read; anything else in the playlists is ignored.

// hlsVariant is one EXT-X-STREAM-INF of a master playlist.
type hlsVariant struct {
	URI           string
	Bandwidth     int64
	Width, Height int
}

// short is the variant's short side (its height for a landscape picture),
// which names a rung ("360p"); 0 when the master gave no RESOLUTION.
func (v hlsVariant) short() int { return min(v.Width, v.Height) }

// hlsPart is a part of a file a player fetches: the whole file when Length
// is -1, else Length bytes from Offset.
type hlsPart struct {
	URI            string
	Offset, Length int64
	// Duration is the segment's EXTINF in seconds (0 for the init section).
	Duration float64
}

// rangeHeader is the part's Range header value, "" for a whole file.
func (p hlsPart) rangeHeader() string {
	if p.Length < 0 {
		return ""
	}
	return "bytes=" + strconv.FormatInt(p.Offset, 10) + "-" + strconv.FormatInt(p.Offset+p.Length-1, 10)
}

// hlsMedia is a media playlist: the init section (EXT-X-MAP; URI "" when
// there is none) and the segments in order.
type hlsMedia struct {
	Init     hlsPart
	Segments []hlsPart
}

// maxPlaylist bounds what the tool reads of a playlist.
const maxPlaylist = 1 << 20

var errNotPlaylist = errors.New("not an HLS playlist (no #EXTM3U)")

// parseMaster reads the variants of a master playlist.
func parseMaster(b []byte) ([]hlsVariant, error) {
	lines, err := playlistLines(b)
	if err != nil {
		return nil, err
	}
	var out []hlsVariant
	for i := 0; i < len(lines); i++ {
		attrs, ok := strings.CutPrefix(lines[i], "#EXT-X-STREAM-INF:")
		if !ok {
			continue
		}
		v := hlsVariant{}
		for k, val := range attributes(attrs) {
			switch k {
			case "BANDWIDTH":
				v.Bandwidth, _ = strconv.ParseInt(val, 10, 64)
			case "RESOLUTION":
				w, h, _ := strings.Cut(val, "x")
				v.Width, _ = strconv.Atoi(w)
				v.Height, _ = strconv.Atoi(h)
			}
		}
		// The URI is the next line that is not a tag or a comment.
		for i++; i < len(lines) && strings.HasPrefix(lines[i], "#"); i++ {
		}
		if i == len(lines) {
			return nil, errors.New("master playlist: EXT-X-STREAM-INF without a URI")
		}
		v.URI = lines[i]
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("master playlist: no variant")
	}
	return out, nil
}

// pickVariant chooses the variant whose short side is short; else the
// largest one below it; else the smallest there is. A variant without a
// RESOLUTION counts as below every size.
func pickVariant(vs []hlsVariant, short int) hlsVariant {
	below, smallest := -1, 0
	for i, v := range vs {
		if v.short() == short {
			return v
		}
		if v.short() < short && (below < 0 || v.short() > vs[below].short()) {
			below = i
		}
		if v.short() < vs[smallest].short() {
			smallest = i
		}
	}
	if below >= 0 {
		return vs[below]
	}
	return vs[smallest]
}

// parseMedia reads a media playlist's init section and segments.
func parseMedia(b []byte) (hlsMedia, error) {
	lines, err := playlistLines(b)
	if err != nil {
		return hlsMedia{}, err
	}
	var m hlsMedia
	// A byte range without an offset starts where the previous range of
	// the same file ended (RFC 8216, 4.3.2.2).
	next := map[string]int64{}
	var dur float64
	var rng *[2]int64 // length, offset (-1: after the previous)
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "#EXT-X-MAP:"):
			a := attributes(strings.TrimPrefix(l, "#EXT-X-MAP:"))
			m.Init = hlsPart{URI: a["URI"], Length: -1}
			if br, ok := a["BYTERANGE"]; ok {
				n, off, err := byteRange(br)
				if err != nil || off < 0 {
					return hlsMedia{}, fmt.Errorf("media playlist: EXT-X-MAP BYTERANGE %q needs a length and an offset", br)
				}
				m.Init.Offset, m.Init.Length = off, n
			}
		case strings.HasPrefix(l, "#EXTINF:"):
			v, _, _ := strings.Cut(strings.TrimPrefix(l, "#EXTINF:"), ",")
			d, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || d < 0 || math.IsInf(d, 0) || math.IsNaN(d) {
				return hlsMedia{}, fmt.Errorf("media playlist: bad EXTINF %q", l)
			}
			dur = d
		case strings.HasPrefix(l, "#EXT-X-BYTERANGE:"):
			n, off, err := byteRange(strings.TrimPrefix(l, "#EXT-X-BYTERANGE:"))
			if err != nil {
				return hlsMedia{}, fmt.Errorf("media playlist: %w", err)
			}
			rng = &[2]int64{n, off}
		case strings.HasPrefix(l, "#"):
		default:
			p := hlsPart{URI: l, Length: -1, Duration: dur}
			if rng != nil {
				p.Length, p.Offset = rng[0], rng[1]
				if p.Offset < 0 {
					off, ok := next[l]
					if !ok {
						return hlsMedia{}, fmt.Errorf("media playlist: the first byte range of %q has no offset", l)
					}
					p.Offset = off
				}
				next[l] = p.Offset + p.Length
			}
			m.Segments = append(m.Segments, p)
			dur, rng = 0, nil
		}
	}
	if len(m.Segments) == 0 {
		return hlsMedia{}, errors.New("media playlist: no segment")
	}
	return m, nil
}

// byteRange reads "n[@o]"; o is -1 when absent.
func byteRange(s string) (n, off int64, err error) {
	ns, offs, hasOff := strings.Cut(strings.TrimSpace(s), "@")
	n, err = strconv.ParseInt(ns, 10, 64)
	if err != nil || n <= 0 {
		return 0, 0, fmt.Errorf("bad byte range %q", s)
	}
	off = -1
	if hasOff {
		if off, err = strconv.ParseInt(offs, 10, 64); err != nil || off < 0 {
			return 0, 0, fmt.Errorf("bad byte range %q", s)
		}
	}
	return n, off, nil
}

// playlistLines splits a playlist into its non-empty lines, checking that
// it is one.
func playlistLines(b []byte) ([]string, error) {
	if len(b) > maxPlaylist {
		return nil, fmt.Errorf("playlist larger than %d bytes", maxPlaylist)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxPlaylist)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(lines) == 0 || lines[0] != "#EXTM3U" {
		return nil, errNotPlaylist
	}
	return lines, nil
}

// attributes reads an attribute list (KEY=value,KEY="quoted, value"),
// unquoting quoted values.
func attributes(s string) map[string]string {
	out := map[string]string{}
	for s != "" {
		key, rest, ok := strings.Cut(s, "=")
		if !ok {
			break
		}
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				val, rest = rest[1:], ""
			} else {
				val, rest = rest[1:1+end], rest[2+end:]
			}
			rest = strings.TrimPrefix(rest, ",")
		} else {
			val, rest, _ = strings.Cut(rest, ",")
		}
		out[strings.TrimSpace(key)] = val
		s = rest
	}
	return out
}
