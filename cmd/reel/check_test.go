package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

// reelCheck runs the binary's check on dir and returns its exit status
// and output.
func reelCheck(t *testing.T, bin, dir, dbURL string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"check"}, args...)...)
	cmd.Env = append(os.Environ(), "REEL_DATA_DIR="+filepath.Join(dir, "data"), "REEL_LOG_FORMAT=text", "REEL_DATABASE_URL="+dbURL, "REEL_BLOB_URL=")
	out, err := cmd.Output()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	default:
		t.Fatalf("reel check: %v", err)
		return 0, ""
	}
}

// TestCheckExitStatus: reel check exits 0 on a clean system, 1 when it
// finds a difference (here, a blob of no video), and 0 again once -fix
// has repaired it; on both engines.
func TestCheckExitStatus(t *testing.T) {
	bin := buildReel(t)
	sqldbtest.Engines(t, func(t *testing.T, dbURL string) { testCheckExitStatus(t, bin, dbURL) })
}

func testCheckExitStatus(t *testing.T, bin, dbURL string) {
	dir := t.TempDir()
	if code, out := reelCheck(t, bin, dir, dbURL); code != 0 || !strings.Contains(out, ": 0 findings") {
		t.Fatalf("fresh data dir: exit %d\n%s", code, out)
	}

	orphan := filepath.Join(dir, "data", "blobs", "videos", "0193a5c4-0000-7000-8000-000000000001", "video.mp4")
	if err := os.MkdirAll(filepath.Dir(orphan), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(orphan, []byte("left behind"), 0o640); err != nil {
		t.Fatal(err)
	}
	// Within the grace period it may be an upload in flight.
	if code, out := reelCheck(t, bin, dir, dbURL); code != 0 {
		t.Fatalf("a fresh blob: exit %d\n%s", code, out)
	}
	old := time.Now().Add(-3 * time.Hour)
	if err := os.Chtimes(orphan, old, old); err != nil {
		t.Fatal(err)
	}
	code, out := reelCheck(t, bin, dir, dbURL)
	if code != 1 || !strings.Contains(out, "orphan_blob: videos/0193a5c4-0000-7000-8000-000000000001/video.mp4") {
		t.Fatalf("an orphan: exit %d\n%s", code, out)
	}
	code, out = reelCheck(t, bin, dir, dbURL, "-json")
	var rep struct {
		Findings []struct {
			Kind  string `json:"kind"`
			Key   string `json:"key"`
			Fixed bool   `json:"fixed"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || len(rep.Findings) != 1 || rep.Findings[0].Kind != "orphan_blob" {
		t.Fatalf("-json: exit %d, %v\n%s", code, err, out)
	}
	if code, out := reelCheck(t, bin, dir, dbURL, "-fix"); code != 0 || !strings.Contains(out, "1 findings, 1 fixed") {
		t.Fatalf("-fix: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the orphan is still there: %v", err)
	}
	if code, out := reelCheck(t, bin, dir, dbURL); code != 0 {
		t.Fatalf("after -fix: exit %d\n%s", code, out)
	}
	// A bad flag is an error of its own kind.
	if code, _ := reelCheck(t, bin, dir, dbURL, "-grace", "soon"); code != 2 {
		t.Fatalf("bad flag: exit %d, want 2", code)
	}
}
