package integration

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

// TestRecoverAfterKill reproduces issue 20's finding 3 on the all-in-one
// process, on SQLite and on PostgreSQL: a process killed (SIGKILL) in the
// middle of a multipart upload left its reservations held for hours and
// its spool file for a day, and the user could not upload meanwhile. Now
// the upload's reservations are a lease the dead process no longer renews
// (REEL_RESERVE_LEASE, short here), released by the sweeps within about a
// lease and a half; the spool file is removed at start; a resumable upload
// in progress survives the restart, reservations and bytes, and completes.
func TestRecoverAfterKill(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) { recoverAfterKill(t, engine) })
	}
}

func recoverAfterKill(t *testing.T, engine string) {
	file := makeNoisyVideo(t)
	content, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	body, ctype := multipartBody(t, file, "killed")
	held, size := int64(body.Len()), int64(len(content))
	// Room for the resumable upload and one multipart upload, not two.
	quota := size + held + held/2
	c := &cluster{t: t, procs: map[string]*proc{}}
	env := append([]string{"REEL_DATA_DIR=" + t.TempDir()}, limits...)
	env = append(env, "REEL_STORAGE_QUOTA="+strconv.FormatInt(quota, 10), "REEL_RESERVE_LEASE=2s")
	if engine == "postgres" {
		env = append(env, "REEL_DATABASE_URL="+sqldbtest.PostgresURL(t))
	}
	all := c.add("all", env...)
	all.dataDir = env[0][len("REEL_DATA_DIR="):]
	all.start()
	c.entry = all.base()
	ann := c.client()
	ann.login("ann@example.com", "correct horse", true)

	// A resumable upload, half sent.
	loc := ann.tusCreate("resumable", size)
	if a := ann.do("PATCH", loc, bytes.NewReader(content[:size/2]), tusPatchHeaders(0)...); a.status != 204 {
		t.Fatalf("tus patch: %d %s", a.status, a.raw)
	}
	// A multipart upload, a third sent, then the process is killed.
	resume := make(chan struct{})
	mp := ann.stalled(resume, "POST", "/api/v1/videos", body.Bytes(), body.Len()/3, "Content-Type", ctype)
	wantStorage(t, ann, 0, size+held)
	wantDailyUpload(t, ann, 0, size+held)
	eventually(t, 30*time.Second, func() string {
		if n := dataBytes(t, all, "uploads/spool"); n < 64<<10 {
			return fmt.Sprintf("%d bytes received so far", n)
		}
		return ""
	})
	// Meanwhile the user cannot upload: the quota is held.
	if a := ann.upload(file, "blocked"); a.status != 413 {
		t.Fatalf("upload while the first is held: %d %s", a.status, a.raw)
	}
	_ = all.stop(syscall.SIGKILL)
	close(resume)
	if a := <-mp; a.status/100 == 2 {
		t.Fatalf("upload: %d after the crash", a.status)
	}
	if n := dataBytes(t, all, "uploads/spool"); n == 0 {
		t.Fatal("the killed process left no spool file: nothing to recover")
	}

	all.start()
	// The dead upload's reservations lapse; the resumable one's stay.
	wantStorage(t, ann, 0, size)
	wantDailyUpload(t, ann, 0, size)
	if n := dataBytes(t, all, "uploads/spool"); n != 0 {
		t.Fatalf("spool files left after the restart: %d bytes", n)
	}
	if a := ann.upload(file, "after"); a.status != 201 {
		t.Fatalf("upload after the restart: %d %s", a.status, a.raw)
	}
	head := ann.do("HEAD", loc, nil, "Tus-Resumable", "1.0.0")
	if head.status != 200 || head.header.Get("Upload-Offset") != strconv.FormatInt(size/2, 10) {
		t.Fatalf("the resumable upload after the restart: %d %v", head.status, head.header)
	}
	if a := ann.do("PATCH", loc, bytes.NewReader(content[size/2:]), tusPatchHeaders(size/2)...); a.status != 204 || a.header.Get("Reel-Video-Id") == "" {
		t.Fatalf("tus resume: %d %v %s", a.status, a.header, a.raw)
	}
	wantStorage(t, ann, -1, 0)
	wantDailyUpload(t, ann, 2*size, 0)
}
