package integration

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// reelCmd runs a one-shot reel command (backup, restore) with env.
func reelCmd(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(reelBin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// slowUpload is a multipart upload whose body is sent in two halves: the
// request is in flight between send and finish.
type slowUpload struct {
	pw   *io.PipeWriter
	rest []byte
	done chan answer
}

func (cl *client) startSlowUpload(path, title string) *slowUpload {
	cl.t.Helper()
	content, err := os.ReadFile(path)
	if err != nil {
		cl.t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("title", title)
	fw, _ := mw.CreateFormFile("video", "clip.mp4")
	_, _ = fw.Write(content)
	_ = mw.Close()
	all := body.Bytes()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", cl.url("/api/v1/videos"), pr)
	req.Header.Set("Authorization", "Bearer "+cl.token)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.ContentLength = int64(len(all))
	u := &slowUpload{pw: pw, rest: all[len(all)/2:], done: make(chan answer, 1)}
	go func() {
		res, err := cl.http.Do(req)
		if err != nil {
			u.done <- answer{status: -1, raw: []byte(err.Error())}
			return
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		u.done <- answer{status: res.StatusCode, raw: raw}
	}()
	if _, err := pw.Write(all[:len(all)/2]); err != nil {
		cl.t.Fatal(err)
	}
	return u
}

func (u *slowUpload) finish() answer {
	_, _ = u.pw.Write(u.rest)
	_ = u.pw.Close()
	return <-u.done
}

// uploadBytes is upload of content held in memory.
func (cl *client) uploadBytes(content []byte, title string) answer {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("title", title)
	fw, _ := mw.CreateFormFile("video", "clip.mp4")
	_, _ = fw.Write(content)
	_ = mw.Close()
	return cl.do("POST", "/api/v1/videos", &buf, "Content-Type", mw.FormDataContentType())
}

// download fetches a video's whole file through its playback URL.
func (cl *client) download(id string) []byte {
	cl.t.Helper()
	pb := cl.jsonDo("POST", "/api/v1/videos/"+id+"/playback", nil, 200)
	a := cl.do("GET", pb["url"].(string), nil)
	if a.status != 200 {
		cl.t.Fatalf("download %s: %d", id, a.status)
	}
	return a.raw
}

// eventIDs are the ids of the activity events of a user.
func (cl *client) eventIDs(userID string) map[string]string {
	cl.t.Helper()
	m := cl.jsonDo("GET", "/api/v1/logs?limit=1000&user_id="+userID, nil, 200)
	out := map[string]string{}
	for _, it := range m["items"].([]any) {
		ev := it.(map[string]any)
		out[ev["id"].(string)] = ev["action"].(string)
	}
	return out
}

// TestBackupWhileServingAndRestore backs up a running all-in-one reel
// while uploads are in flight, restores the backup into a new data
// directory and starts reel there: the same accounts, videos (byte for
// byte), quotas, daily usage and activity log. A restore into a data
// directory that is not empty, and of a backup whose bytes no longer match
// its manifest, are refused and leave nothing behind.
func TestBackupWhileServingAndRestore(t *testing.T) {
	clips := map[string][]byte{}
	for i, secs := range []int{1, 2, 3} {
		b, err := os.ReadFile(makeVideo(t, secs))
		if err != nil {
			t.Fatal(err)
		}
		clips[fmt.Sprint("clip", i)] = b
	}
	clipFile := func(title string) string {
		p := filepath.Join(t.TempDir(), "clip.mp4")
		if err := os.WriteFile(p, clips[title], 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	start := time.Now()
	c := allInOne(t)
	live := c.procs["all"]
	admin := c.client()
	admin.login(adminEmail, adminPassword, false)

	// ann and bob are settled before the backup; carl uploads during it.
	users := map[string]*client{}
	ids := map[string]string{}
	for _, name := range []string{"ann", "bob", "carl"} {
		users[name] = c.client()
		ids[name] = users[name].login(name+"@example.com", "password of "+name, true)
	}
	admin.jsonDo("PATCH", "/api/v1/users/"+ids["bob"], map[string]any{"storage_quota_bytes": 20 << 20, "daily_upload_limit_bytes": 30 << 20}, 200)
	videos := map[string]string{} // video id → clip title
	for name, titles := range map[string][]string{"ann": {"clip0", "clip1"}, "bob": {"clip2"}} {
		var size int64
		for _, title := range titles {
			a := users[name].upload(clipFile(title), title)
			if a.status != 201 {
				t.Fatalf("upload: %d %s", a.status, a.raw)
			}
			videos[a.json(t)["video"].(map[string]any)["id"].(string)] = title
			size += int64(len(clips[title]))
		}
		// Settled: every poster cut and charged, nothing reserved.
		eventually(t, 5*time.Minute, func() string {
			st := users[name].jsonDo("GET", "/api/v1/storage/me", nil, 200)
			if int64(st["used_bytes"].(float64)) <= size || st["reserved_bytes"].(float64) != 0 {
				return fmt.Sprintf("%s's posters not charged yet: %v", name, st)
			}
			return ""
		})
	}
	settled := map[string]bool{}
	for id := range videos {
		settled[id] = true
	}
	before := map[string][2]map[string]any{}
	events := map[string]map[string]string{}
	for _, name := range []string{"ann", "bob"} {
		before[name] = [2]map[string]any{
			users[name].jsonDo("GET", "/api/v1/storage/me", nil, 200),
			users[name].jsonDo("GET", "/api/v1/usage/me", nil, 200),
		}
		eventually(t, 15*time.Second, func() string {
			events[name] = admin.eventIDs(ids[name])
			n := 0
			for _, a := range events[name] {
				if a == "UPLOAD_VIDEO" {
					n++
				}
			}
			if n == 0 {
				return "no UPLOAD_VIDEO event of " + name + " yet"
			}
			return ""
		})
	}

	t.Logf("%s: settled before the backup", time.Since(start).Round(time.Second))
	// The backup, with carl's uploads in flight: one half sent before it
	// starts and finished after it ends, others back to back throughout.
	slow := users["carl"].startSlowUpload(clipFile("clip1"), "clip1")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	carlDone := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			a := users["carl"].uploadBytes(clips["clip0"], "clip0")
			if a.status != 201 {
				t.Errorf("carl's upload during the backup: %d %s", a.status, a.raw)
				return
			}
			mu.Lock()
			videos[a.json(t)["video"].(map[string]any)["id"].(string)] = "clip0"
			carlDone++
			mu.Unlock()
		}
	}()
	dest := filepath.Join(t.TempDir(), "backup")
	out, err := reelCmd(t, live.env, "backup", dest)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if !strings.Contains(out, "backed up 1 database and ") || !strings.Contains(out, "hard-linked") {
		t.Fatalf("backup said: %s", out)
	}
	a := slow.finish()
	if a.status != 201 {
		t.Fatalf("the upload in flight: %d %s", a.status, a.raw)
	}
	slowID := a.json(t)["video"].(map[string]any)["id"].(string)
	videos[slowID] = "clip1"
	t.Logf("%s: carl uploaded %d videos during the backup; %s", time.Since(start).Round(time.Second), carlDone, out)

	// Restore into a new data directory and serve it.
	newDir := filepath.Join(t.TempDir(), "data")
	env := []string{"REEL_DATA_DIR=" + newDir}
	if out, err := reelCmd(t, env, "restore", dest); err != nil || !strings.Contains(out, "restored 1 database and ") {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	rc := &cluster{t: t, procs: map[string]*proc{}}
	restored := rc.add("restored", append(env, limits...)...)
	restored.start()
	rc.entry = restored.base()

	radmin := rc.client()
	radmin.login(adminEmail, adminPassword, false)
	ruser := map[string]*client{}
	for _, name := range []string{"ann", "bob", "carl"} {
		ruser[name] = rc.client()
		if id := ruser[name].login(name+"@example.com", "password of "+name, false); id != ids[name] {
			t.Fatalf("%s's id after the restore: %s, was %s", name, id, ids[name])
		}
	}
	for _, name := range []string{"ann", "bob"} {
		st := ruser[name].jsonDo("GET", "/api/v1/storage/me", nil, 200)
		us := ruser[name].jsonDo("GET", "/api/v1/usage/me", nil, 200)
		if fmt.Sprint(st) != fmt.Sprint(before[name][0]) || fmt.Sprint(us["upload"]) != fmt.Sprint(before[name][1]["upload"]) {
			t.Errorf("%s's figures after the restore: %v %v; before: %v", name, st, us, before[name])
		}
	}
	if q := ruser["bob"].jsonDo("GET", "/api/v1/storage/me", nil, 200)["quota_bytes"].(float64); q != 20<<20 {
		t.Errorf("bob's quota after the restore: %v", q)
	}
	if l := ruser["bob"].jsonDo("GET", "/api/v1/usage/me", nil, 200)["upload"].(map[string]any)["limit_bytes"].(float64); l != 30<<20 {
		t.Errorf("bob's daily upload limit after the restore: %v", l)
	}
	// Every video: ann's and bob's all there, carl's those the snapshot
	// saw, each byte for byte. One of carl's that was being finalised at
	// the snapshot is restored as it was, processing (the maintenance job
	// fails it once it is older than a finalisation may take).
	seen := map[string]bool{}
	present := map[string]bool{}
	var carlSize int64
	for _, name := range []string{"ann", "bob", "carl"} {
		mine := ruser[name].jsonDo("GET", "/api/v1/videos/mine?limit=100", nil, 200)
		for _, it := range mine["items"].([]any) {
			v := it.(map[string]any)
			id := v["id"].(string)
			present[id] = true
			title, ok := videos[id]
			if ok && name == "carl" && v["status"] == "processing" {
				t.Logf("restored as processing: %s", id)
				continue
			}
			if !ok || v["status"] != "ready" {
				t.Errorf("restored video %v was never uploaded whole", v)
				continue
			}
			if got := ruser[name].download(id); !bytes.Equal(got, clips[title]) {
				t.Errorf("video %s after the restore: %d bytes differ from the %d uploaded", id, len(got), len(clips[title]))
			}
			seen[id] = true
			if name == "carl" {
				carlSize += int64(len(clips[title]))
			}
		}
	}
	for id := range settled {
		if !seen[id] {
			t.Errorf("video %s, uploaded before the backup, missing after the restore", id)
		}
	}
	if present[slowID] {
		t.Errorf("the upload finished after the backup (%s) is in it", slowID)
	}
	if st := ruser["carl"].jsonDo("GET", "/api/v1/storage/me", nil, 200); int64(st["used_bytes"].(float64)) < carlSize {
		t.Errorf("carl's storage after the restore: %v, his videos have %d bytes", st, carlSize)
	}
	// The activity log holds every event it held, and the events still
	// in the outbox at the snapshot arrive.
	for _, name := range []string{"ann", "bob"} {
		eventually(t, 15*time.Second, func() string {
			got := radmin.eventIDs(ids[name])
			for id, action := range events[name] {
				if got[id] != action {
					return fmt.Sprintf("%s's event %s (%s) missing after the restore", name, id, action)
				}
			}
			return ""
		})
	}

	t.Logf("%s: the restored server checked", time.Since(start).Round(time.Second))
	// Refusals: a data directory in use, and a backup that has changed.
	if out, err := reelCmd(t, env, "restore", dest); err == nil || !strings.Contains(out, "not empty") {
		t.Errorf("restore into a data directory in use: %v\n%s", err, out)
	}
	var victim string
	for id := range seen {
		victim = filepath.Join(dest, "blobs", "videos", id, "video.mp4")
		break
	}
	// A new file, not a write into the old: it is a hard link of the live
	// blob.
	b, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(victim, b, 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "data")
	if out, err := reelCmd(t, []string{"REEL_DATA_DIR=" + other}, "restore", dest); err == nil || !strings.Contains(out, "does not match its manifest") {
		t.Errorf("restore of a changed backup: %v\n%s", err, out)
	}
	if entries, _ := os.ReadDir(other); len(entries) != 0 && !(len(entries) == 1 && entries[0].Name() == "blobs") {
		t.Errorf("a refused restore left %v behind", entries)
	}
	if entries, _ := os.ReadDir(filepath.Join(other, "blobs")); len(entries) != 0 {
		t.Errorf("a refused restore left blobs behind: %v", entries)
	}
}
