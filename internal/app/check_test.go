package app_test

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/app/apptest"
	"github.com/reel-video/reel/internal/platform/obs"
)

// The periodic check in split mode: the videos process runs the
// videos_check job at start, asking the storage and usage services in
// another process over their internal routes, and its metrics show what
// it found: here one orphan blob (older than the grace period), nothing
// else.
func TestCheckJobInSplitMode(t *testing.T) {
	key := strings.Repeat("k", 32)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	others := "http://" + ln.Addr().String()
	apptest.StartOn(t, apptest.New(t, map[string]string{"REEL_TARGET": "users,logs,storage,usage", "REEL_SERVICE_KEY": key}, obs.Discard()), ln)

	dir := t.TempDir()
	orphan := filepath.Join(dir, "blobs", "videos", "0193a5c4-0000-7000-8000-000000000002", "video.mp4")
	if err := os.MkdirAll(filepath.Dir(orphan), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(orphan, []byte("left behind"), 0o640); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-3 * time.Hour)
	if err := os.Chtimes(orphan, old, old); err != nil {
		t.Fatal(err)
	}
	base, _ := apptest.Start(t, apptest.New(t, map[string]string{
		"REEL_TARGET": "videos", "REEL_DATA_DIR": dir, "REEL_SERVICE_KEY": key,
		"REEL_USERS_URL": others, "REEL_LOGS_URL": others, "REEL_STORAGE_URL": others, "REEL_USAGE_URL": others,
	}, obs.Discard()))

	deadline := time.Now().Add(2 * time.Minute)
	var body string
	for {
		res, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		body = string(b)
		if strings.Contains(body, "reel_check_last_run_timestamp_seconds ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no check ran: %s", grepLines(body, "reel_jobs"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{
		`reel_check_findings{kind="orphan_blob"} 1`, `reel_check_findings{kind="ledger"} 0`,
		`reel_check_findings{kind="missing_blob"} 0`, `reel_check_findings{kind="lapsed_storage_reservations"} 0`,
		`reel_check_findings{kind="lapsed_upload_reservations"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %s in\n%s", want, grepLines(body, "reel_check"))
		}
	}
	// Reported, not repaired: the job fixes nothing.
	if _, err := os.Stat(orphan); err != nil {
		t.Errorf("the periodic check touched the orphan: %v", err)
	}
}
