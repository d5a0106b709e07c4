package obs

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: what a process started from a
// shell has as its stderr.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// On a terminal "auto" writes the lines for people; "json" still writes JSON.
func TestAutoIsTextOnTerminal(t *testing.T) {
	master, tty := openPTY(t)
	if !IsTerminal(tty) {
		t.Fatal("a pseudo-terminal is not taken for a terminal")
	}
	lines := bufio.NewReader(master)
	NewLogger(tty, "info", "auto").Info("hello", "n", 1)
	line, err := lines.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	line = strings.TrimRight(line, "\r\n")
	if !humanLine.MatchString(line) || !strings.HasSuffix(line, "INFO  hello n=1") {
		t.Fatalf("auto on a terminal: %q", line)
	}
	NewLogger(tty, "info", "json").Info("hello")
	if line, err = lines.ReadString('\n'); err != nil || !strings.HasPrefix(line, `{"time":`) {
		t.Fatalf("json on a terminal: %q %v", line, err)
	}
}
