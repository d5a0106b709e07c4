package obs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// humanHandler writes a record as one line for a person at a terminal:
//
//	14:03:07 INFO  reel is serving url=http://localhost:8080/ modules=users,logs
//
// The time of day, the level, the message as is, then key=value pairs as
// slog's text handler writes them (quoted when needed, groups as dotted
// keys), so the lines stay easy to grep. slog's text handler itself starts
// every line with time=2026-…T…+01:00 level=INFO msg="…", which buries the
// message a person is looking for.
type humanHandler struct {
	mu    *sync.Mutex // shared by the handlers derived with WithAttrs/WithGroup
	w     io.Writer
	level slog.Leveler
	attrs []byte // attributes from WithAttrs, formatted, each after a space
	group string // the WithGroup prefix, "" or ending in "."
}

func newHumanHandler(w io.Writer, level slog.Leveler) *humanHandler {
	return &humanHandler{mu: new(sync.Mutex), w: w, level: level}
}

func (h *humanHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *humanHandler) Handle(_ context.Context, r slog.Record) error {
	buf := make([]byte, 0, 256)
	if !r.Time.IsZero() {
		buf = r.Time.AppendFormat(buf, "15:04:05")
		buf = append(buf, ' ')
	}
	lv := r.Level.String()
	buf = append(buf, lv...)
	for i := len(lv); i < 5; i++ {
		buf = append(buf, ' ')
	}
	buf = append(buf, ' ')
	buf = appendMessage(buf, r.Message)
	buf = append(buf, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		buf = appendAttr(buf, h.group, a)
		return true
	})
	buf = append(buf, '\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(buf)
	return err
}

func (h *humanHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	h2 := *h
	h2.attrs = append([]byte(nil), h.attrs...)
	for _, a := range as {
		h2.attrs = appendAttr(h2.attrs, h.group, a)
	}
	return &h2
}

func (h *humanHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.group = h.group + name + "."
	return &h2
}

// appendMessage keeps a message on its line: one with a line break or
// other control character is quoted.
func appendMessage(buf []byte, msg string) []byte {
	for _, c := range msg {
		if unicode.IsControl(c) {
			return strconv.AppendQuote(buf, msg)
		}
	}
	return append(buf, msg...)
}

func appendAttr(buf []byte, prefix string, a slog.Attr) []byte {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return buf
	}
	if a.Value.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			buf = appendAttr(buf, prefix, g)
		}
		return buf
	}
	buf = append(buf, ' ')
	buf = appendText(buf, prefix+a.Key)
	buf = append(buf, '=')
	return appendText(buf, valueText(a.Value))
}

func valueText(v slog.Value) string {
	switch v.Kind() {
	case slog.KindString:
		return v.String()
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return err.Error()
		}
		return fmt.Sprint(v.Any())
	}
	return v.String()
}

// appendText writes s bare when that reads back unambiguously, else
// quoted, as slog's text handler does.
func appendText(buf []byte, s string) []byte {
	if needsQuoting(s) {
		return strconv.AppendQuote(buf, s)
	}
	return append(buf, s...)
}

func needsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for _, c := range s {
		if c == utf8.RuneError || c == '=' || c == '"' || unicode.IsSpace(c) || !unicode.IsPrint(c) {
			return true
		}
	}
	return false
}
