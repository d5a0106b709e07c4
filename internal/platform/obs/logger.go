package obs

import (
	"io"
	"log/slog"
	"strings"

	"golang.org/x/term"
)

// NewLogger builds the process logger. format is "text" (lines for people,
// see humanHandler), "json" (one object per line, for log collectors) or
// "auto": text when w is a terminal, else JSON, so that a newcomer at a
// shell reads the log and a container's collector parses it without either
// setting anything.
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: ParseLevel(level)}
	if ChooseFormat(format, IsTerminal(w)) == "text" {
		return slog.New(newHumanHandler(w, opts.Level))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// ChooseFormat resolves a log format setting to "text" or "json".
func ChooseFormat(format string, terminal bool) string {
	switch strings.ToLower(format) {
	case "text":
		return "text"
	case "json":
		return "json"
	}
	if terminal {
		return "text"
	}
	return "json"
}

// IsTerminal reports whether w is a file open on a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// ParseLevel reads debug, info, warn or error (any case); anything else is
// info. Configuration validates the setting before it gets here.
func ParseLevel(level string) slog.Level {
	switch strings.ToLower(level) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
