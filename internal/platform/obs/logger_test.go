package obs

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/slogtest"
	"time"
)

func TestChooseFormat(t *testing.T) {
	for _, c := range []struct {
		format   string
		terminal bool
		want     string
	}{
		{"auto", true, "text"},
		{"auto", false, "json"},
		{"", true, "text"},
		{"", false, "json"},
		{"json", true, "json"},
		{"JSON", false, "json"},
		{"text", false, "text"},
		{"text", true, "text"},
	} {
		if got := ChooseFormat(c.format, c.terminal); got != c.want {
			t.Errorf("ChooseFormat(%q, terminal=%v) = %q, want %q", c.format, c.terminal, got, c.want)
		}
	}
}

// A buffer, a pipe or a plain file is no terminal: "auto" writes JSON there.
func TestAutoIsJSONOffTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var buf bytes.Buffer
	for _, out := range []io.Writer{&buf, f, w} {
		if IsTerminal(out) {
			t.Errorf("%T taken for a terminal", out)
		}
	}
	NewLogger(&buf, "info", "auto").Info("hello", "n", 1)
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil || m["msg"] != "hello" || m["n"] != 1.0 {
		t.Fatalf("auto off a terminal: %v %q", err, buf.String())
	}
}

var humanLine = regexp.MustCompile(`^\d\d:\d\d:\d\d (INFO |WARN |ERROR|DEBUG) `)

func TestHumanFormat(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, "info", "text")
	log.Debug("not shown")
	log.With("service", "users").WithGroup("req").Info("reel is serving", "url", "http://localhost:8080/", "path", "/a b", "n", 3,
		"err", errors.New(`bad "x"`), "empty", "", slog.Group("g", "k", true))
	log.Warn("two\nlines")
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", buf.String())
	}
	want := `INFO  reel is serving service=users req.url=http://localhost:8080/ req.path="/a b" req.n=3 req.err="bad \"x\"" req.empty="" req.g.k=true`
	if !humanLine.MatchString(lines[0]) || lines[0][9:] != want {
		t.Errorf("got  %q\nwant %q", lines[0], "hh:mm:ss "+want)
	}
	if lines[1][9:] != `WARN  "two\nlines"` {
		t.Errorf("multi-line message: %q", lines[1])
	}
}

// The handler keeps slog's rules (groups, WithAttrs, empty attributes,
// LogValuer, zero time): testing/slogtest checks each, reading the lines
// back with parseHuman.
func TestHumanHandlerConformance(t *testing.T) {
	var buf bytes.Buffer
	slogtest.Run(t, func(*testing.T) slog.Handler {
		buf.Reset()
		return newHumanHandler(&buf, slog.LevelInfo)
	}, func(t *testing.T) map[string]any {
		m, err := parseHuman(strings.TrimSuffix(buf.String(), "\n"))
		if err != nil {
			t.Fatalf("%v: %q", err, buf.String())
		}
		return m
	})
}

// parseHuman reads one line of humanHandler back into slogtest's shape:
// time, level and msg, then dotted keys as nested maps. It expects a
// one-word message, as slogtest logs.
func parseHuman(line string) (map[string]any, error) {
	m := map[string]any{}
	var toks []string
	for line != "" {
		line = strings.TrimLeft(line, " ")
		if line == "" {
			break
		}
		var tok strings.Builder
		for line != "" && line[0] != ' ' {
			if line[0] == '"' {
				q, err := strconv.QuotedPrefix(line)
				if err != nil {
					return nil, err
				}
				s, _ := strconv.Unquote(q)
				tok.WriteString(s)
				line = line[len(q):]
				continue
			}
			tok.WriteByte(line[0])
			line = line[1:]
		}
		toks = append(toks, tok.String())
	}
	if len(toks) > 0 {
		if tm, err := time.Parse("15:04:05", toks[0]); err == nil {
			m[slog.TimeKey] = tm
			toks = toks[1:]
		}
	}
	if len(toks) < 2 {
		return nil, errors.New("no level and message")
	}
	m[slog.LevelKey], m[slog.MessageKey] = toks[0], toks[1]
	for _, kv := range toks[2:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, errors.New("not key=value: " + kv)
		}
		path := strings.Split(k, ".")
		cur := m
		for _, p := range path[:len(path)-1] {
			next, ok := cur[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[p] = next
			}
			cur = next
		}
		cur[path[len(path)-1]] = v
	}
	return m, nil
}
