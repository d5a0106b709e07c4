package integration

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestFaultStorageDown: with the storage process gone, uploads answer 503
// with Retry-After and a problem document that tells nothing internal;
// once storage is back nothing is left over: no reservation, no blob, no
// video row, and the figures are those of the real videos.
func TestFaultStorageDown(t *testing.T) {
	c := split(t)
	file := makeVideo(t, 1)
	ann := c.client()
	ann.login("ann@example.com", "correct horse", true)
	up := ann.upload(file, "kept")
	if up.status != 201 {
		t.Fatalf("upload: %d %s", up.status, up.raw)
	}
	kept := up.json(t)["video"].(map[string]any)
	keptID, keptSize := kept["id"].(string), int64(kept["size_bytes"].(float64))
	posterCut(t, ann, keptID)
	before := ann.jsonDo("GET", "/api/v1/storage/me", nil, 200)
	used := int64(before["used_bytes"].(float64))
	if used <= keptSize || before["reserved_bytes"].(float64) != 0 {
		t.Fatalf("storage before: %v (video %d bytes and a poster)", before, keptSize)
	}

	storage := c.procs["storage"]
	if err := storage.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// Multipart upload, the original system's upload and a tus creation:
	// 503, Retry-After, nothing internal.
	for i := range 2 {
		wantUnavailable(t, ann.upload(file, fmt.Sprintf("refused %d", i)), "multipart upload")
	}
	body, ctype := multipartBody(t, file, "refused compat")
	compat := ann.do("POST", "/api/videos/upload", body, "Content-Type", ctype)
	if compat.status != 503 || compat.header.Get("Retry-After") == "" {
		t.Fatalf("compat upload: %d %v %s", compat.status, compat.header, compat.raw)
	}
	noInternals(t, compat.raw)
	size := fileSize(t, file)
	wantUnavailable(t, ann.do("POST", "/api/v1/uploads", nil, "Tus-Resumable", "1.0.0",
		"Upload-Length", strconv.FormatInt(size, 10), "Upload-Metadata", tusMeta("refused tus", "clip.mp4")), "tus creation")
	// The storage routes themselves: the gateway answers.
	wantUnavailable(t, ann.do("GET", "/api/v1/storage/me", nil), "storage figures")
	// A delete moves the video to the trash but cannot give its bytes
	// back yet: 503, and the client deletes again later.
	del := ann.do("DELETE", "/api/v1/videos/"+keptID, nil)
	if del.status != 503 && del.status != 204 {
		t.Fatalf("delete while storage is down: %d %s", del.status, del.raw)
	}
	if del.status == 503 {
		wantUnavailable(t, del, "delete")
	}

	storage.start()

	if a := ann.do("DELETE", "/api/v1/videos/"+keptID, nil); a.status != 204 {
		t.Fatalf("delete again: %d %s", a.status, a.raw)
	}
	wantStorage(t, ann, 0, 0)
	ann.jsonDo("POST", "/api/v1/videos/"+keptID+"/restore", nil, 200)
	wantStorage(t, ann, used, 0)
	u := ann.jsonDo("GET", "/api/v1/usage/me", nil, 200)["upload"].(map[string]any)
	if int64(u["used_bytes"].(float64)) != keptSize || u["reserved_bytes"].(float64) != 0 {
		t.Fatalf("daily upload: %v, want %d used and nothing reserved", u, keptSize)
	}
	vdb := openDB(t, c.procs["videos"])
	if n := count(t, vdb, "SELECT COUNT(*) FROM videos"); n != 1 {
		t.Fatalf("%d video rows, want 1", n)
	}
	if n := count(t, vdb, "SELECT COUNT(*) FROM uploads"); n != 0 {
		t.Fatalf("%d tus upload rows, want none", n)
	}
	wantBlobs(t, c.blob, "videos/"+keptID+"/poster.jpg", "videos/"+keptID+"/video.mp4")
	wantNoFiles(t, c.procs["videos"])
	// And uploads work again.
	if a := ann.upload(file, "after"); a.status != 201 {
		t.Fatalf("upload after storage is back: %d %s", a.status, a.raw)
	}
}

// TestFaultStorageDiesMidUpload: the storage process goes away while an
// admitted upload is still arriving, so its bytes cannot be committed. The
// client gets 503; once storage is back, the upload leaves nothing behind.
func TestFaultStorageDiesMidUpload(t *testing.T) {
	c := split(t)
	file := makeNoisyVideo(t)
	content, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ann := c.client()
	ann.login("ann@example.com", "correct horse", true)
	videos := c.procs["videos"]

	resume := make(chan struct{})
	body, ctype := multipartBody(t, file, "cut off from storage")
	mp := ann.paced(resume, 0, "POST", "/api/v1/videos", body.Bytes(), len(content)/3, "Content-Type", ctype)
	wantStorage(t, ann, 0, int64(body.Len()))
	eventually(t, 30*time.Second, func() string {
		if n := dataBytes(t, videos, "uploads/spool"); n < 64<<10 {
			return fmt.Sprintf("%d bytes received so far", n)
		}
		return ""
	})
	storage := c.procs["storage"]
	if err := storage.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	close(resume)
	select {
	case a := <-mp:
		wantUnavailable(t, a, "upload that lost storage")
	case <-time.After(60 * time.Second):
		t.Fatal("no answer to the upload")
	}

	storage.start()
	vdb := openDB(t, videos)
	wantStorage(t, ann, 0, 0)
	wantDailyUpload(t, ann, 0, 0)
	eventually(t, 60*time.Second, func() string {
		if n := count(t, vdb, "SELECT COUNT(*) FROM videos"); n != 0 {
			return fmt.Sprintf("%d video rows left", n)
		}
		return ""
	})
	if mine := ann.jsonDo("GET", "/api/v1/videos/mine", nil, 200)["items"].([]any); len(mine) != 0 {
		t.Fatalf("the owner still sees %v", mine)
	}
	wantBlobs(t, c.blob)
	wantNoFiles(t, videos)
	if a := ann.upload(file, "after"); a.status != 201 {
		t.Fatalf("upload after storage is back: %d %s", a.status, a.raw)
	}
}
