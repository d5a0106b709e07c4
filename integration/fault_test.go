package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// The fault tests run the split deployment (one process per service, each
// on its own PostgreSQL database, videos on S3, the gateway in front) and
// take one service away at a time.

// TestFaultLogsDown: with the logs process gone, every service keeps
// working and its activity events wait in its outbox; once logs is back
// each event arrives exactly once.
func TestFaultLogsDown(t *testing.T) {
	c := split(t)
	file := makeVideo(t, 1)

	admin := c.client()
	admin.login(adminEmail, adminPassword, false)
	ann := c.client()
	// want maps the request ids the test sends to the actions of the
	// events each must produce.
	want := map[string][]string{}
	rid := func(name string, actions ...string) string {
		id := "fault-logs-" + name + "-" + randomKey()[:8]
		want[id] = actions
		return id
	}
	if a := ann.doJSON(rid("register-ann", "REGISTER"), "POST", "/api/v1/auth/register",
		map[string]string{"email": "ann@example.com", "password": "correct horse", "username": "ann"}); a.status != 201 {
		t.Fatalf("register: %d %s", a.status, a.raw)
	}
	ann.loginID(rid("login-ann", "LOGIN"), "ann@example.com", "correct horse")

	// SIGKILL: the relays lose their peer without notice, as in a crash.
	logs := c.procs["logs"]
	_ = logs.stop(syscall.SIGKILL)

	// The logs API itself answers 503 through the gateway.
	wantUnavailable(t, admin.do("GET", "/api/v1/logs", nil), "logs down")

	// Act on every service while logs is down.
	ann.loginID(rid("login-again", "LOGIN"), "ann@example.com", "correct horse")
	if a := ann.doJSON(rid("login-bad", "LOGIN"), "POST", "/api/v1/auth/login",
		map[string]string{"email": "ann@example.com", "password": "wrong password"}); a.status != 401 {
		t.Fatalf("bad login: %d %s", a.status, a.raw)
	}
	bob := c.client()
	if a := bob.doJSON(rid("register-bob", "REGISTER"), "POST", "/api/v1/auth/register",
		map[string]string{"email": "bob@example.com", "password": "correct horse", "username": "bob"}); a.status != 201 {
		t.Fatalf("register bob: %d %s", a.status, a.raw)
	}
	body, ctype := multipartBody(t, file, "while logs is down")
	up := ann.do("POST", "/api/v1/videos", body, "Content-Type", ctype, "X-Request-ID", rid("upload", "UPLOAD_VIDEO"))
	if up.status != 201 {
		t.Fatalf("upload: %d %s", up.status, up.raw)
	}
	id := up.json(t)["video"].(map[string]any)["id"].(string)
	steps := []struct {
		name, method, path string
		body               any
		status             int
		action             string
	}{
		{"feed", "GET", "/api/v1/videos", nil, 200, "FETCH_VIDEOS"},
		{"storage", "GET", "/api/v1/storage/me", nil, 200, "CHECK_STORAGE"},
		{"usage", "GET", "/api/v1/usage/me", nil, 200, "CHECK_BANDWIDTH"},
		{"playback", "POST", "/api/v1/videos/" + id + "/playback", nil, 200, "STREAM_VIDEO"},
		{"update", "PATCH", "/api/v1/videos/" + id, map[string]string{"title": "renamed"}, 200, "UPDATE_VIDEO"},
		{"delete", "DELETE", "/api/v1/videos/" + id, nil, 204, "DELETE_VIDEO"},
		{"restore", "POST", "/api/v1/videos/" + id + "/restore", nil, 200, "RESTORE_VIDEO"},
	}
	for _, s := range steps {
		if a := ann.doJSON(rid(s.name, s.action), s.method, s.path, s.body); a.status != s.status {
			t.Fatalf("%s: %d %s", s.name, a.status, a.raw)
		}
	}

	// Every service with an outbox has tried to deliver and failed, and
	// holds its events.
	dbs := map[string]*sqldb.DB{}
	for _, svc := range []string{"users", "videos", "storage", "usage"} {
		dbs[svc] = openDB(t, c.procs[svc])
	}
	eventually(t, 60*time.Second, func() string {
		for svc := range dbs {
			if n := metric(t, c.procs[svc], "reel_outbox_failed_deliveries_total", svc+"_outbox"); n < 1 {
				return svc + ": no failed delivery yet"
			}
			if n := count(t, dbs[svc], "SELECT COUNT(*) FROM "+svc+"_outbox"); n == 0 {
				return svc + ": outbox empty while logs is down"
			}
		}
		return ""
	})

	logs.start()

	// Every outbox drains, and then the log holds each event once.
	eventually(t, 90*time.Second, func() string {
		for svc, db := range dbs {
			if n := count(t, db, "SELECT COUNT(*) FROM "+svc+"_outbox"); n != 0 {
				return fmt.Sprintf("%s: %d events still in the outbox", svc, n)
			}
		}
		return ""
	})
	got := map[string][]string{}
	seen := map[string]bool{}
	cursor := ""
	for {
		path := "/api/v1/logs?limit=1000"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		page := admin.jsonDo("GET", path, nil, 200)
		for _, it := range page["items"].([]any) {
			ev := it.(map[string]any)
			eid := ev["id"].(string)
			if seen[eid] {
				t.Fatalf("event %s listed twice: %v", eid, ev)
			}
			seen[eid] = true
			if r, _ := ev["request_id"].(string); want[r] != nil {
				got[r] = append(got[r], ev["action"].(string))
			}
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	for r, actions := range want {
		g := slices.Clone(got[r])
		slices.Sort(g)
		slices.Sort(actions)
		if !slices.Equal(g, actions) {
			t.Errorf("request %s: events %v, want exactly %v", r, g, actions)
		}
	}
}

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

// TestFaultUsersRestart: access tokens keep working on every other service
// while the users process restarts (they verify with the cached JWKS), and
// after it; tokens made before the restart still work on users itself.
func TestFaultUsersRestart(t *testing.T) {
	c := split(t)
	ann := c.client()
	ann.jsonDo("POST", "/api/v1/auth/register", map[string]string{"email": "ann@example.com", "password": "correct horse", "username": "ann"}, 201)
	pair := ann.jsonDo("POST", "/api/v1/auth/login", map[string]string{"email": "ann@example.com", "password": "correct horse"}, 200)
	ann.token = pair["access_token"].(string)
	// One path per service that verifies tokens itself.
	paths := []string{"/api/v1/videos/mine", "/api/v1/storage/me", "/api/v1/usage/me", "/api/v1/logs/me"}
	for _, p := range paths {
		ann.jsonDo("GET", p, nil, 200) // also fills each service's key cache
	}

	// Readers hammer the other services through the restart.
	var (
		mu       sync.Mutex
		failures []string
		rounds   int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &client{t: t, base: c.entry, token: ann.token, http: &http.Client{Timeout: 30 * time.Second}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, p := range paths {
					if a := cl.get(p); a.status != 200 {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("GET %s: %d %s", p, a.status, a.raw))
						mu.Unlock()
					}
				}
				mu.Lock()
				rounds++
				mu.Unlock()
			}
		}()
	}
	users := c.procs["users"]
	if err := users.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// While users is down: its routes answer 503, everyone else still
	// knows the token.
	wantUnavailable(t, c.client().do("POST", "/api/v1/auth/login", strings.NewReader(`{"email":"ann@example.com","password":"correct horse"}`),
		"Content-Type", "application/json"), "login while users is down")
	wantUnavailable(t, ann.do("GET", "/api/v1/users/me", nil), "users/me while users is down")
	mu.Lock()
	start := rounds
	mu.Unlock()
	eventually(t, 30*time.Second, func() string {
		mu.Lock()
		defer mu.Unlock()
		if rounds < start+3 {
			return "readers made no progress while users was down"
		}
		return ""
	})
	for _, p := range paths {
		ann.jsonDo("GET", p, nil, 200)
	}
	users.start()
	for _, p := range append(paths, "/api/v1/users/me") {
		ann.jsonDo("GET", p, nil, 200)
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d reads failed during the restart, e.g. %s", len(failures), rounds*len(paths), failures[0])
	}

	// After the restart: the refresh token from before still rotates, and
	// the new access token works everywhere.
	fresh := ann.jsonDo("POST", "/api/v1/auth/refresh", map[string]string{"refresh_token": pair["refresh_token"].(string)}, 200)
	ann.token = fresh["access_token"].(string)
	for _, p := range append(paths, "/api/v1/users/me") {
		ann.jsonDo("GET", p, nil, 200)
	}
}

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
// arrived, so no row and no blob exist yet); the upload's reservations
// stay held until they expire (the upload's ReserveTTL), when the storage
// and usage sweeps (run at start and every minute) release them.
func TestFaultVideosKilled(t *testing.T) {
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
	wantStorage(t, ann, 0, held)
	wantDailyUpload(t, ann, 0, held)
	if n := count(t, openDB(t, videos), "SELECT COUNT(*) FROM videos"); n != 0 {
		t.Fatalf("%d video rows after the crash", n)
	}
	wantBlobs(t, c.blob)

	// The reservations expire; make that now and restart storage and
	// usage, whose sweeps run at start.
	past := time.Now().Add(-time.Minute).UnixMicro()
	for _, svc := range []string{"storage", "usage"} {
		if _, err := openDB(t, c.procs[svc]).W.ExecContext(t.Context(),
			`UPDATE `+svc+`_reservations SET expires_at = $1 WHERE state = 'held'`, past); err != nil {
			t.Fatal(err)
		}
		c.procs[svc].restart(syscall.SIGTERM)
	}
	wantStorage(t, ann, 0, 0)
	wantDailyUpload(t, ann, 0, 0)
	videos.start()
	if a := ann.upload(file, "after"); a.status != 201 {
		t.Fatalf("upload after the restart: %d %s", a.status, a.raw)
	}
}

// --- helpers ---

// doJSON sends v as JSON with a request id.
func (cl *client) doJSON(requestID, method, path string, v any) answer {
	cl.t.Helper()
	var body io.Reader
	hdr := []string{"X-Request-ID", requestID}
	if v != nil {
		b, _ := json.Marshal(v)
		body = bytes.NewReader(b)
		hdr = append(hdr, "Content-Type", "application/json")
	}
	return cl.do(method, path, body, hdr...)
}

// loginID logs in with a request id.
func (cl *client) loginID(requestID, email, password string) {
	cl.t.Helper()
	a := cl.doJSON(requestID, "POST", "/api/v1/auth/login", map[string]string{"email": email, "password": password})
	if a.status != 200 {
		cl.t.Fatalf("login: %d %s", a.status, a.raw)
	}
	cl.token = a.json(cl.t)["access_token"].(string)
}

// get is a GET that may run off the test's goroutine (it never fails the
// test itself).
func (cl *client) get(path string) answer {
	req, err := http.NewRequest("GET", cl.url(path), nil)
	if err != nil {
		return answer{status: -1, raw: []byte(err.Error())}
	}
	req.Header.Set("Authorization", "Bearer "+cl.token)
	res, err := cl.http.Do(req)
	if err != nil {
		return answer{status: -1, raw: []byte(err.Error())}
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, header: res.Header, raw: raw}
}

// stalled sends a request of len(body) declared bytes: the first n at
// once, then nothing until resume is closed, then the rest slowly (16 KiB
// every 100 ms), as a client on a poor network. The answer, or the
// transport error as status -1, arrives on the channel.
func (cl *client) stalled(resume <-chan struct{}, method, path string, body []byte, n int, hdr ...string) chan answer {
	return cl.paced(resume, 100*time.Millisecond, method, path, body, n, hdr...)
}

// paced is stalled with a pause of pace between 16 KiB pieces of the rest.
func (cl *client) paced(resume <-chan struct{}, pace time.Duration, method, path string, body []byte, n int, hdr ...string) chan answer {
	cl.t.Helper()
	pr, pw := io.Pipe()
	cl.t.Cleanup(func() { _ = pr.CloseWithError(fmt.Errorf("the test ended")) })
	go func() {
		if _, err := pw.Write(body[:n]); err != nil {
			return
		}
		<-resume
		for off := n; off < len(body); off += 16 << 10 {
			time.Sleep(pace)
			if _, err := pw.Write(body[off:min(off+16<<10, len(body))]); err != nil {
				return
			}
		}
		_ = pw.Close()
	}()
	req, err := http.NewRequest(method, cl.url(path), pr)
	if err != nil {
		cl.t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Authorization", "Bearer "+cl.token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	out := make(chan answer, 1)
	go func() {
		res, err := (&http.Client{}).Do(req)
		if err != nil {
			out <- answer{status: -1, raw: []byte(err.Error())}
			return
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		out <- answer{status: res.StatusCode, header: res.Header, raw: raw}
	}()
	return out
}

// tusCreate creates a tus upload and returns its URL.
func (cl *client) tusCreate(title string, size int64) string {
	cl.t.Helper()
	a := cl.do("POST", "/api/v1/uploads", nil, "Tus-Resumable", "1.0.0",
		"Upload-Length", strconv.FormatInt(size, 10), "Upload-Metadata", tusMeta(title, "clip.mp4"))
	if a.status != 201 || a.header.Get("Location") == "" {
		cl.t.Fatalf("tus create: %d %v %s", a.status, a.header, a.raw)
	}
	loc, err := url.Parse(a.header.Get("Location"))
	if err != nil {
		cl.t.Fatal(err)
	}
	return cl.base + loc.Path
}

func tusMeta(title, filename string) string {
	enc := base64.StdEncoding.EncodeToString
	return "title " + enc([]byte(title)) + ",filename " + enc([]byte(filename))
}

func tusPatchHeaders(offset int64) []string {
	return []string{"Tus-Resumable", "1.0.0", "Content-Type", "application/offset+octet-stream", "Upload-Offset", strconv.FormatInt(offset, 10)}
}

// multipartBody is the multipart upload of the file at path.
func multipartBody(t *testing.T, file, title string) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("title", title)
	fw, _ := mw.CreateFormFile("video", filepath.Base(file))
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(b)
	_ = mw.Close()
	return &buf, mw.FormDataContentType()
}

// makeNoisyVideo writes a two-second MP4 of about a megabyte (noise does
// not compress).
func makeNoisyVideo(t *testing.T) string {
	t.Helper()
	makeVideo(t, 1) // the ffmpeg check
	out := filepath.Join(t.TempDir(), "noisy.mp4")
	cmd := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=2:size=320x240:rate=25,noise=alls=60:allf=t",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-movflags", "+faststart", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

func fileSize(t *testing.T, file string) int64 {
	t.Helper()
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// wantUnavailable checks a 503 problem document with Retry-After that
// tells nothing of the inside.
func wantUnavailable(t *testing.T, a answer, what string) {
	t.Helper()
	if a.status != 503 {
		t.Fatalf("%s: %d %s, want 503", what, a.status, a.raw)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s: content type %q", what, ct)
	}
	if ra, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || ra <= 0 {
		t.Fatalf("%s: Retry-After %q", what, a.header.Get("Retry-After"))
	}
	p := a.json(t)
	if p["status"] != float64(503) || p["code"] == "" || p["detail"] == "" {
		t.Fatalf("%s: problem %s", what, a.raw)
	}
	noInternals(t, a.raw)
}

// noInternals fails if an answer shows internal text: addresses, network
// errors, Go error chains.
func noInternals(t *testing.T, raw []byte) {
	t.Helper()
	s := strings.ToLower(string(raw))
	for _, bad := range []string{"127.0.0.1", "dial", "tcp", "refused", "eof", "client:", "storage client", "usage client", "reserve:", "admit upload", "internal/v1", "http://"} {
		if strings.Contains(s, bad) {
			t.Fatalf("the answer shows internal text %q: %s", bad, raw)
		}
	}
}

// wantStorage waits until the caller's storage figures are used (any when
// negative) and reserved, and returns them.
// posterCut waits until video id's poster, cut after its upload was
// answered on idle cores only (which a busy test machine may keep from
// it for a while), is there.
func posterCut(t *testing.T, cl *client, id string) {
	t.Helper()
	eventually(t, time.Minute, func() string {
		pb := cl.do("POST", "/api/v1/videos/"+id+"/playback", nil)
		if pb.status != 200 {
			return fmt.Sprintf("playback: %d %s", pb.status, pb.raw)
		}
		var body struct {
			PosterURL string `json:"poster_url"`
		}
		if err := json.Unmarshal(pb.raw, &body); err != nil || body.PosterURL == "" {
			return fmt.Sprintf("playback: %s", pb.raw)
		}
		if p := cl.do("GET", body.PosterURL, nil); p.status != 200 || p.header.Get("Cache-Control") == "no-store" {
			return fmt.Sprintf("poster: %d %v (the placeholder until it is cut)", p.status, p.header)
		}
		return ""
	})
}

func wantStorage(t *testing.T, cl *client, used, reserved int64) map[string]any {
	t.Helper()
	var st map[string]any
	eventually(t, 30*time.Second, func() string {
		a := cl.do("GET", "/api/v1/storage/me", nil)
		if a.status != 200 {
			return fmt.Sprintf("storage/me: %d %s", a.status, a.raw)
		}
		st = a.json(t)
		u, r := int64(st["used_bytes"].(float64)), int64(st["reserved_bytes"].(float64))
		if (used >= 0 && u != used) || r != reserved {
			return fmt.Sprintf("storage %v, want used %d reserved %d", st, used, reserved)
		}
		return ""
	})
	return st
}

// wantDailyUpload waits until the caller's daily upload volume is used
// and reserved.
func wantDailyUpload(t *testing.T, cl *client, used, reserved int64) {
	t.Helper()
	eventually(t, 30*time.Second, func() string {
		a := cl.do("GET", "/api/v1/usage/me", nil)
		if a.status != 200 {
			return fmt.Sprintf("usage/me: %d %s", a.status, a.raw)
		}
		u := a.json(t)["upload"].(map[string]any)
		if int64(u["used_bytes"].(float64)) != used || int64(u["reserved_bytes"].(float64)) != reserved {
			return fmt.Sprintf("daily upload %v, want used %d reserved %d", u, used, reserved)
		}
		return ""
	})
}

// openDB opens a process's database from the test.
func openDB(t *testing.T, p *proc) *sqldb.DB {
	t.Helper()
	if p.dbURL == "" {
		t.Fatalf("%s has no database of its own", p.name)
	}
	db, err := sqldb.Open(t.Context(), p.dbURL, sqldb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func count(t *testing.T, db *sqldb.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.R.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// metric sums a counter or gauge of a process's /metrics for one table
// label.
func metric(t *testing.T, p *proc, name, table string) float64 {
	t.Helper()
	res, err := http.Get(p.base() + "/metrics")
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var sum float64
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, `table="`+table+`"`) {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// dataBytes is the size of the files under a directory of a process's
// data directory.
func dataBytes(t *testing.T, p *proc, dir string) int64 {
	t.Helper()
	var n int64
	_ = filepath.WalkDir(filepath.Join(p.dataDir, dir), func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size() + 1 // an empty file counts too
			}
		}
		return nil
	})
	return n
}

// wantNoFiles checks that no upload left a file on the videos disk.
func wantNoFiles(t *testing.T, videos *proc) {
	t.Helper()
	for _, dir := range []string{"uploads/spool", "uploads/tus"} {
		if n := dataBytes(t, videos, dir); n != 0 {
			entries, _ := os.ReadDir(filepath.Join(videos.dataDir, dir))
			t.Fatalf("files left in %s: %v", dir, entries)
		}
	}
}

// wantBlobs checks that the bucket holds exactly keys, and no unfinished
// multipart upload.
func wantBlobs(t *testing.T, blobURL string, keys ...string) {
	t.Helper()
	cfg, err := blob.ParseS3URL(blobURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""), Secure: !cfg.Insecure, Region: cfg.Region,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	for o := range mc.ListObjects(ctx, cfg.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		got = append(got, o.Key)
	}
	slices.Sort(got)
	keys = slices.Clone(keys)
	slices.Sort(keys)
	if !slices.Equal(got, keys) {
		t.Fatalf("bucket holds %v, want %v", got, keys)
	}
	for u := range mc.ListIncompleteUploads(ctx, cfg.Bucket, "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		t.Fatalf("unfinished multipart upload left: %s", u.Key)
	}
}
