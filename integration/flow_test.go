package integration

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

func TestFlowAllInOneSQLite(t *testing.T) {
	c := allInOne(t)
	flow(t, c)
}

func TestFlowSplitPostgresS3(t *testing.T) {
	c := split(t)
	flow(t, c)
}

// eventually retries check until it returns "" or the deadline passes.
func eventually(t *testing.T, within time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// flow walks the whole product through the public address: register, log
// in, upload, feed, play a range, usage and storage figures, delete,
// restore, and an admin reads the logs.
func flow(t *testing.T, c *cluster) {
	file := makeVideo(t, 2)
	content, _ := os.ReadFile(file)
	size := float64(len(content))

	ann := c.client()
	annID := ann.login("ann@example.com", "correct horse", true)
	me := ann.jsonDo("GET", "/api/v1/users/me", nil, 200)
	if me["user"].(map[string]any)["email"] != "ann@example.com" {
		t.Fatalf("me: %v", me)
	}

	up := ann.upload(file, "My first clip")
	if up.status != 201 {
		t.Fatalf("upload: %d %s", up.status, up.raw)
	}
	video := up.json(t)["video"].(map[string]any)
	id := video["id"].(string)
	if video["owner_id"] != annID || video["status"] != "ready" || video["size_bytes"].(float64) != size || video["content_type"] != "video/mp4" {
		t.Fatalf("video: %v", video)
	}
	if w, _ := video["width"].(float64); w != 320 {
		t.Fatalf("width: %v", video)
	}

	feed := ann.jsonDo("GET", "/api/v1/videos", nil, 200)
	if items := feed["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != id {
		t.Fatalf("feed: %v", feed)
	}

	// Playback: signed URLs that work without any header.
	pb := ann.jsonDo("POST", "/api/v1/videos/"+id+"/playback", nil, 200)
	viewer := &client{t: t, base: c.entry, http: ann.http}
	mediaURL := pb["url"].(string)
	if !strings.HasSuffix(mediaURL, ".mp4") {
		t.Fatalf("playback url %s", mediaURL)
	}
	rng := viewer.do("GET", mediaURL, nil, "Range", "bytes=0-99")
	if rng.status != 206 || !bytes.Equal(rng.raw, content[:100]) || rng.header.Get("Content-Range") != fmt.Sprintf("bytes 0-99/%d", len(content)) {
		t.Fatalf("range: %d %v", rng.status, rng.header)
	}
	last := viewer.do("GET", mediaURL, nil, "Range", "bytes=-10")
	if last.status != 206 || !bytes.Equal(last.raw, content[len(content)-10:]) {
		t.Fatalf("suffix range: %d", last.status)
	}
	// The poster is cut after the upload was answered: a placeholder,
	// not to be cached (nor counted as egress), until then.
	var poster answer
	eventually(t, 20*time.Second, func() string {
		poster = viewer.do("GET", pb["poster_url"].(string), nil)
		if poster.status != 200 || poster.header.Get("Content-Type") != "image/jpeg" || len(poster.raw) < 100 || poster.header.Get("Cache-Control") == "no-store" {
			return fmt.Sprintf("poster: %d %v", poster.status, poster.header)
		}
		return ""
	})
	tampered := strings.Replace(mediaURL, "/media/", "/media/x", 1)
	if a := viewer.do("GET", tampered, nil, "Range", "bytes=0-9"); a.status != 403 {
		t.Fatalf("tampered url: %d", a.status)
	}

	// Usage: the upload counts today; egress counts exactly the bytes sent.
	egressWant := float64(100 + 10 + len(poster.raw))
	eventually(t, 10*time.Second, func() string {
		u := ann.jsonDo("GET", "/api/v1/usage/me", nil, 200)
		upl := u["upload"].(map[string]any)["used_bytes"].(float64)
		eg := u["egress"].(map[string]any)["used_bytes"].(float64)
		if upl != size || eg != egressWant {
			return fmt.Sprintf("usage: upload %v (want %v) egress %v (want %v)", upl, size, eg, egressWant)
		}
		return ""
	})
	st := ann.jsonDo("GET", "/api/v1/storage/me", nil, 200)
	used := st["used_bytes"].(float64)
	if used < size || st["reserved_bytes"].(float64) != 0 || st["quota_bytes"].(float64) != 50<<20 {
		t.Fatalf("storage: %v", st)
	}

	// Delete to the trash: bytes stop counting; restore brings them back.
	if a := ann.do("DELETE", "/api/v1/videos/"+id, nil); a.status != 204 {
		t.Fatalf("delete: %d %s", a.status, a.raw)
	}
	if a := ann.do("DELETE", "/api/v1/videos/"+id, nil); a.status != 204 {
		t.Fatalf("delete again: %d", a.status)
	}
	if st := ann.jsonDo("GET", "/api/v1/storage/me", nil, 200); st["used_bytes"].(float64) != 0 {
		t.Fatalf("storage after delete: %v", st)
	}
	trash := ann.jsonDo("GET", "/api/v1/trash", nil, 200)
	if items := trash["items"].([]any); len(items) != 1 || items[0].(map[string]any)["purge_at"] == nil {
		t.Fatalf("trash: %v", trash)
	}
	if a := viewer.do("GET", mediaURL, nil, "Range", "bytes=0-9"); a.status == 206 || a.status == 200 {
		t.Fatalf("trashed video still plays: %d", a.status)
	}
	ann.jsonDo("POST", "/api/v1/videos/"+id+"/restore", nil, 200)
	if st := ann.jsonDo("GET", "/api/v1/storage/me", nil, 200); st["used_bytes"].(float64) != used {
		t.Fatalf("storage after restore: %v (want %v)", st, used)
	}

	// An admin reads the activity log.
	admin := c.client()
	admin.login(adminEmail, adminPassword, false)
	// An admin reads ann's figures; an id no account has is 404 (storage
	// and usage ask the users service, in process or over HTTP).
	if st := admin.jsonDo("GET", "/api/v1/storage/users/"+annID, nil, 200); st["used_bytes"].(float64) != used {
		t.Fatalf("admin reads ann's storage: %v (want %v)", st, used)
	}
	if h := admin.jsonDo("GET", "/api/v1/usage/users/"+annID, nil, 200); h["user_id"] != annID {
		t.Fatalf("admin reads ann's usage: %v", h)
	}
	for _, p := range []string{"/api/v1/storage/users/", "/api/v1/usage/users/"} {
		if r := admin.do("GET", p+"0190a4f2-0000-7000-8000-000000000000", nil); r.status != 404 || !strings.Contains(string(r.raw), "user_not_found") {
			t.Fatalf("%s of an unknown id: %d %s", p, r.status, r.raw)
		}
	}
	want := []string{"REGISTER", "LOGIN", "UPLOAD_VIDEO", "STREAM_VIDEO", "DELETE_VIDEO", "RESTORE_VIDEO", "CHECK_STORAGE", "CHECK_BANDWIDTH"}
	eventually(t, 15*time.Second, func() string {
		logs := admin.jsonDo("GET", "/api/v1/logs?limit=1000&user_id="+url.QueryEscape(annID), nil, 200)
		seen := map[string]int{}
		ids := map[string]bool{}
		for _, it := range logs["items"].([]any) {
			ev := it.(map[string]any)
			seen[ev["action"].(string)]++
			if ids[ev["id"].(string)] {
				return "duplicate event " + ev["id"].(string)
			}
			ids[ev["id"].(string)] = true
		}
		for _, a := range want {
			if seen[a] == 0 {
				return fmt.Sprintf("no %s event yet; have %v", a, seen)
			}
		}
		if seen["UPLOAD_VIDEO"] != 1 || seen["REGISTER"] != 1 {
			return fmt.Sprintf("events counted wrong: %v", seen)
		}
		return ""
	})
	// A user cannot read the admin log; anonymous callers are refused.
	if a := ann.do("GET", "/api/v1/logs", nil); a.status != 403 {
		t.Fatalf("user reads all logs: %d", a.status)
	}
	anon := c.client()
	if a := anon.do("GET", "/api/v1/logs/me", nil); a.status != 401 {
		t.Fatalf("anonymous reads logs: %d", a.status)
	}
}
