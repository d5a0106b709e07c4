package media

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

// Progress is how far one ffmpeg run has come.
type Progress struct {
	// Done is how much of the source has been written out.
	Done time.Duration
	// Percent is Done against the source's duration, 0 to 100; 100 once
	// ffmpeg says it has finished.
	Percent float64
	// Speed is how many seconds of the source ffmpeg goes through per
	// second; 0 until it says.
	Speed float64
}

// progressArgs make ffmpeg print its progress on stdout, a block of
// key=value lines about twice a second, instead of its status line.
var progressArgs = []string{"-nostats", "-progress", "pipe:1", "-stats_period", "0.5"}

// progressWriter reads ffmpeg's -progress blocks as they are written and
// calls fn at the end of each.
type progressWriter struct {
	lineWriter
	duration float64 // seconds of source
	fn       func(Progress)
	cur      Progress
}

func newProgressWriter(duration float64, fn func(Progress)) *progressWriter {
	w := &progressWriter{duration: duration, fn: fn}
	w.lineWriter.fn = w.field
	return w
}

func (w *progressWriter) field(line []byte) {
	key, value, ok := bytes.Cut(bytes.TrimSpace(line), []byte("="))
	if !ok {
		return
	}
	v := string(bytes.TrimSpace(value))
	switch string(key) {
	case "out_time_us":
		// The time written so far; negative or N/A before the first
		// frame.
		if us, err := strconv.ParseInt(v, 10, 64); err == nil && us >= 0 {
			w.cur.Done = time.Duration(us) * time.Microsecond
			if w.duration > 0 {
				w.cur.Percent = min(100, 100*w.cur.Done.Seconds()/w.duration)
			}
		}
	case "speed":
		if x, err := strconv.ParseFloat(strings.TrimSuffix(v, "x"), 64); err == nil && x >= 0 {
			w.cur.Speed = x
		}
	case "progress": // the block's last line: "continue" or "end"
		if v == "end" {
			w.cur.Percent = 100
		}
		if w.fn != nil {
			w.fn(w.cur)
		}
	}
}

// lineWriter hands fn each line written to it, without the newline, as
// the lines come: a tool's output is read in constant memory however long
// it runs. Lines longer than maxLine, which the tools never print, are
// dropped.
type lineWriter struct {
	fn   func(line []byte)
	line []byte
	long bool
}

const maxLine = 256

func (w *lineWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		part := b
		if i >= 0 {
			part = b[:i]
		}
		if len(w.line)+len(part) > maxLine {
			w.long = true
		} else {
			w.line = append(w.line, part...)
		}
		if i < 0 {
			break
		}
		if !w.long {
			w.fn(w.line)
		}
		w.line, w.long = w.line[:0], false
		b = b[i+1:]
	}
	return n, nil
}
