// Package browsertest finds the Chromium that browser tests drive, with
// the same rule as PostgreSQL's tests: a laptop without it skips loudly,
// CI fails.
package browsertest

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
)

const missing = "CHROMIUM NOT INSTALLED: the browser tests are SKIPPED (apt-get install chromium)"

// Path returns the path of Chromium (or Chrome).
func Path(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal("chromium is not installed and CI is set: install it (.ci/run does)")
	}
	t.Skip(missing)
	return ""
}
