package integration

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestFaultVideosSIGTERM stops a videos process while uploads are in
// flight: a multipart upload and two tus uploads, all stalled half-way.
//
// What the design guarantees (and this test checks):
//   - the process drains for REEL_SHUTDOWN_TIMEOUT; uploads whose bytes
//     stop coming are then cut off, and each client gets an error;
//   - a cut-off multipart upload leaves nothing: its handler fails while
//     the process still runs, releasing its storage and daily-volume
//     reservations and deleting its spool file; no video row, no blob;
//   - a cut-off tus upload keeps what arrived (that is what tus is for):
//     after the restart the client resumes from the offset HEAD reports
//     and the video is made once; an upload nobody resumes holds its
//     reservations until it expires, when the expiry job (run at start
//     and every 10 minutes) releases them and deletes its partial file.
func TestFaultVideosSIGTERM(t *testing.T) {
	c := splitWith(t, map[string][]string{"videos": {"REEL_SHUTDOWN_TIMEOUT=2s"}})
	// A megabyte: big enough that the unsent rest is more than a server
	// reads on its own after answering (256 KiB), so that answers come
	// at once.
	file := makeNoisyVideo(t)
	content, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(content))
	videos := c.procs["videos"]
	ann := c.client()
	ann.login("ann@example.com", "correct horse", true)

	// Three uploads that send a third of their bytes, stall until the
	// SIGTERM, then go on too slowly to finish within the drain.
	resume := make(chan struct{})
	body, ctype := multipartBody(t, file, "cut off")
	mp := ann.stalled(resume, "POST", "/api/v1/videos", body.Bytes(), len(content)/3, "Content-Type", ctype)
	tusA := ann.tusCreate("resumed", size)
	tusB := ann.tusCreate("abandoned", size)
	patchA := ann.stalled(resume, "PATCH", tusA, content, len(content)/3, tusPatchHeaders(0)...)
	patchB := ann.stalled(resume, "PATCH", tusB, content, len(content)/3, tusPatchHeaders(0)...)

	// All three are being received: reservations held, bytes on disk.
	multipartBytes := int64(body.Len())
	wantStorage(t, ann, 0, multipartBytes+2*size)
	eventually(t, 30*time.Second, func() string {
		for _, f := range []string{"uploads/spool", "uploads/tus/" + path.Base(tusA), "uploads/tus/" + path.Base(tusB)} {
			if n := dataBytes(t, videos, f); n < 64<<10 {
				return fmt.Sprintf("%s: %d bytes received so far", f, n)
			}
		}
		return ""
	})

	if err := videos.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	close(resume)
	// The cut-off uploads clean up within the close grace: a normal stop.
	if err := videos.wait(); err != nil {
		t.Fatalf("videos exit: %v", err)
	}
	for name, ch := range map[string]chan answer{"multipart": mp, "tus A": patchA, "tus B": patchB} {
		select {
		case a := <-ch:
			if a.status/100 == 2 {
				t.Fatalf("%s: %d after SIGTERM, want an error", name, a.status)
			}
			t.Logf("%s: the client got %d %s", name, a.status, a.raw)
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no answer after the videos process stopped", name)
		}
	}
	// The multipart upload gave everything back before the process
	// exited; the tus uploads hold their reservations.
	wantStorage(t, ann, 0, 2*size)
	wantDailyUpload(t, ann, 0, 2*size)
	if n := dataBytes(t, videos, "uploads/spool"); n != 0 {
		t.Fatalf("%d bytes left in the spool", n)
	}
	vdb := openDB(t, videos)
	if n := count(t, vdb, "SELECT COUNT(*) FROM videos"); n != 0 {
		t.Fatalf("%d video rows after the cut-off uploads", n)
	}
	wantBlobs(t, c.blob)

	videos.start()

	// tus A resumes where it stopped and completes.
	head := ann.do("HEAD", tusA, nil, "Tus-Resumable", "1.0.0")
	if head.status != 200 {
		t.Fatalf("HEAD after restart: %d %v", head.status, head.header)
	}
	off, err := strconv.ParseInt(head.header.Get("Upload-Offset"), 10, 64)
	if err != nil || off < 0 || off >= size {
		t.Fatalf("offset after restart: %q of %d", head.header.Get("Upload-Offset"), size)
	}
	done := ann.do("PATCH", tusA, bytes.NewReader(content[off:]), tusPatchHeaders(off)...)
	if done.status != 204 || done.header.Get("Reel-Video-Id") == "" {
		t.Fatalf("resume: %d %v %s", done.status, done.header, done.raw)
	}
	vid := done.header.Get("Reel-Video-Id")
	v := ann.jsonDo("GET", "/api/v1/videos/"+vid, nil, 200)["video"].(map[string]any)
	if v["status"] != "ready" || int64(v["size_bytes"].(float64)) != size {
		t.Fatalf("resumed video: %v", v)
	}
	pb := ann.jsonDo("POST", "/api/v1/videos/"+vid+"/playback", nil, 200)
	if got := ann.do("GET", pb["url"].(string), nil); got.status != 200 || !bytes.Equal(got.raw, content) {
		t.Fatalf("resumed video plays %d, %d bytes (want %d)", got.status, len(got.raw), len(content))
	}
	posterCut(t, ann, vid)

	// tus B is abandoned: once it has expired, the expiry job gives its
	// reservations back and deletes its partial file. Expiry is a day of
	// idleness; make it due now and restart, which runs the job.
	if _, err := vdb.W.ExecContext(t.Context(), `UPDATE uploads SET expires_at = $1 WHERE state = 'open'`, time.Now().Add(-time.Minute).UnixMicro()); err != nil {
		t.Fatal(err)
	}
	videos.restart(syscall.SIGTERM)
	st := wantStorage(t, ann, -1, 0)
	wantDailyUpload(t, ann, size, 0)
	if n := count(t, vdb, "SELECT COUNT(*) FROM uploads WHERE state = 'expired'"); n != 1 {
		t.Fatalf("%d expired uploads, want 1", n)
	}
	if a := ann.do("HEAD", tusB, nil, "Tus-Resumable", "1.0.0"); a.status != 404 {
		t.Fatalf("HEAD of the expired upload: %d", a.status)
	}
	if n := count(t, vdb, "SELECT COUNT(*) FROM videos"); n != 1 {
		t.Fatalf("%d video rows, want 1", n)
	}
	var poster int64
	if err := vdb.R.QueryRowContext(t.Context(), `SELECT poster_bytes FROM videos WHERE id = $1`, vid).Scan(&poster); err != nil {
		t.Fatal(err)
	}
	if used := int64(st["used_bytes"].(float64)); used != size+poster {
		t.Fatalf("storage used %d, want the video and its poster %d", used, size+poster)
	}
	wantBlobs(t, c.blob, "videos/"+vid+"/poster.jpg", "videos/"+vid+"/video.mp4")
	wantNoFiles(t, videos)
}

// TestFaultVideosKilled: a videos process that dies without a chance to
// clean up (SIGKILL, a crash) in the middle of a multipart upload. The
// client gets an error; nothing was stored (the bytes had not all
// arrived, so no row and no blob exist yet); the upload's reservations are
// leases the dead process no longer renews (REEL_RESERVE_LEASE, short
// here), so the storage and usage sweeps give them back while videos is
// still down, and the upload succeeds once it is back. Until the lease
// lapses they are held: the live process renews them over RPC.
func TestFaultVideosKilled(t *testing.T) {
	lease := []string{"REEL_RESERVE_LEASE=3s"}
	c := splitWith(t, map[string][]string{"storage": lease, "usage": lease, "videos": lease})
	file := makeNoisyVideo(t)
	content, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ann := c.client()
	ann.login("ann@example.com", "correct horse", true)
	videos := c.procs["videos"]

	resume := make(chan struct{})
	body, ctype := multipartBody(t, file, "killed")
	mp := ann.stalled(resume, "POST", "/api/v1/videos", body.Bytes(), len(content)/3, "Content-Type", ctype)
	held := int64(body.Len())
	wantStorage(t, ann, 0, held)
	eventually(t, 30*time.Second, func() string {
		if n := dataBytes(t, videos, "uploads/spool"); n < 64<<10 {
			return fmt.Sprintf("%d bytes received so far", n)
		}
		return ""
	})
	// Renewed by the live process: held past several leases and sweeps.
	time.Sleep(8 * time.Second)
	wantStorage(t, ann, 0, held)
	wantDailyUpload(t, ann, 0, held)
	_ = videos.stop(syscall.SIGKILL)
	close(resume)
	select {
	case a := <-mp:
		if a.status/100 == 2 {
			t.Fatalf("upload: %d after the crash", a.status)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no answer to the upload")
	}
	if n := count(t, openDB(t, videos), "SELECT COUNT(*) FROM videos"); n != 0 {
		t.Fatalf("%d video rows after the crash", n)
	}
	wantBlobs(t, c.blob)

	// The leases lapse and the sweeps give them back, videos still down.
	wantStorage(t, ann, 0, 0)
	wantDailyUpload(t, ann, 0, 0)
	videos.start()
	if n := dataBytes(t, videos, "uploads/spool"); n != 0 {
		t.Fatalf("spool files left after the restart: %d bytes", n)
	}
	if a := ann.upload(file, "after"); a.status != 201 {
		t.Fatalf("upload after the restart: %d %s", a.status, a.raw)
	}
}
