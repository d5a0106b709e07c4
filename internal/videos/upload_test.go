package videos_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/reserve"
	"github.com/reel-video/reel/internal/videos"
)

func TestMultipartUpload(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		clip := testVideo(t, 2, 320, 240)
		ann := e.user("user")
		// The file part first, the fields after it: order does not matter.
		var buf bytes.Buffer
		buf.WriteString("--B\r\nContent-Disposition: form-data; name=\"video\"; filename=\"dir/My clip.mp4\"\r\nContent-Type: video/mp4\r\n\r\n")
		buf.Write(clip)
		buf.WriteString("\r\n--B\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n  Holiday  \r\n--B\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\nAt the sea\r\n--B\r\nContent-Disposition: form-data; name=\"extra\"\r\n\r\nignored\r\n--B--\r\n")
		r := e.do("POST", "/api/v1/videos", ann.token, buf.Bytes(), "Content-Type", "multipart/form-data; boundary=B")
		if r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.raw)
		}
		v := r.video(t)
		want := map[string]any{"owner_id": ann.id, "title": "Holiday", "description": "At the sea", "status": "ready",
			"size_bytes": float64(len(clip)), "content_type": "video/mp4", "width": float64(320), "height": float64(240), "deleted_at": nil}
		for k, w := range want {
			if v[k] != w {
				t.Errorf("%s = %v, want %v", k, v[k], w)
			}
		}
		if d, _ := v["duration_seconds"].(float64); d < 1.9 || d > 2.2 {
			t.Errorf("duration %v", v["duration_seconds"])
		}
		if len(v) != 13 {
			t.Errorf("video has %d fields, want exactly the 13 of API.md (streaming included): %v", len(v), v)
		}
		if st, _ := v["streaming"].(map[string]any); st["state"] != "pending" || st["percent"] != float64(0) {
			t.Errorf("streaming of a new video: %v", v["streaming"])
		}
		if r.header.Get("Location") != "/api/v1/videos/"+v["id"].(string) {
			t.Errorf("location %q", r.header.Get("Location"))
		}
		// The poster is cut after the answer, by a job enqueued with the
		// video: until it has run, only the video is charged, and the
		// poster's URL (given already) answers the placeholder, never to
		// be cached.
		id := v["id"].(string)
		if _, _, objects := e.quota.state(ann.id); objects != 1 {
			t.Errorf("%d objects charged before the poster is cut, want the video", objects)
		}
		jobs := e.posterJobs(id)
		if len(jobs) != 1 {
			t.Fatalf("%d poster jobs", len(jobs))
		}
		var args map[string]any
		if err := json.Unmarshal(jobs[0].EncodedArgs, &args); err != nil || len(args) != 1 || args["video_id"] != id {
			t.Fatalf("the poster job's args: %s", jobs[0].EncodedArgs)
		}
		if j := jobs[0]; j.State != rivertype.JobStateAvailable || j.Priority != 1 || j.MaxAttempts != 3 || j.Queue != "poster" {
			t.Fatalf("the poster job: %+v", j)
		}
		pb := e.do("POST", "/api/v1/videos/"+id+"/playback", ann.token, nil)
		poster, _ := pb.body["poster_url"].(string)
		if pb.status != 200 || poster == "" {
			t.Fatalf("playback while the poster is due: %d %s", pb.status, pb.raw)
		}
		placeholder, err := os.ReadFile("placeholder.jpg")
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{poster, strings.Replace(poster, "poster.jpg", "video.mp4.jpg", 1)} {
			p := e.do("GET", u, "", nil)
			if p.status != 200 || p.header.Get("Content-Type") != "image/jpeg" || p.header.Get("Cache-Control") != "no-store" || !bytes.Equal(p.raw, placeholder) {
				t.Fatalf("poster before it is cut: %d %v, %d bytes", p.status, p.header, len(p.raw))
			}
		}
		if got := e.egress.total(ann.id); got != 0 {
			t.Fatalf("the placeholder was counted as %d bytes of egress", got)
		}
		e.cutPosters()
		p := e.do("GET", poster, "", nil)
		if p.status != 200 || p.header.Get("Content-Type") != "image/jpeg" || p.header.Get("Cache-Control") != "private, no-cache" || bytes.Equal(p.raw, placeholder) {
			t.Fatalf("poster once cut: %d %v", p.status, p.header)
		}
		if jobs := e.posterJobs(id); len(jobs) != 1 || jobs[0].State != rivertype.JobStateCompleted {
			t.Fatalf("the poster job once run: %v", jobStates(jobs))
		}
		// Charged: the video and its poster; the day's upload volume: the
		// video. Nothing held, nothing spooled.
		used, _, objects := e.quota.state(ann.id)
		if used <= int64(len(clip)) || objects != 2 {
			t.Errorf("quota used %d with %d objects, want the video and a poster", used, objects)
		}
		if up, _ := e.limit.state(ann.id); up != int64(len(clip)) {
			t.Errorf("daily upload %d, want %d", up, len(clip))
		}
		e.noLeaks(t, 1)
		if n := e.actions()["UPLOAD_VIDEO:success"]; n != 1 {
			t.Errorf("UPLOAD_VIDEO events: %v", e.actions())
		}
		// Visible to others in the feed and by id.
		bob := e.user("user")
		if g := e.do("GET", "/api/v1/videos/"+v["id"].(string), bob.token, nil); g.status != 200 || g.video(t)["title"] != "Holiday" {
			t.Fatalf("get: %d %s", g.status, g.raw)
		}
		f := e.do("GET", "/api/v1/videos", bob.token, nil)
		if items, _ := f.body["items"].([]any); f.status != 200 || len(items) != 1 || f.body["next_cursor"] != nil {
			t.Fatalf("feed: %d %s", f.status, f.raw)
		}
	})
}

func TestUploadRefusals(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		clip := testVideo(t, 1, 64, 48)
		ann := e.user("user")

		// Unauthenticated: 401 before anything.
		if r := e.upload(user{}, "x", clip); r.status != 401 {
			t.Fatalf("anonymous: %d", r.status)
		}
		// Not multipart.
		if r := e.do("POST", "/api/v1/videos", ann.token, clip, "Content-Type", "video/mp4"); r.status != 415 {
			t.Fatalf("raw body: %d %s", r.status, r.raw)
		}
		// No Content-Length (chunked): 411.
		body, ct := multipartBody(t, map[string]string{"title": "t"}, clip, "a.mp4")
		if r := e.do("POST", "/api/v1/videos", ann.token, io.MultiReader(bytes.NewReader(body)), "Content-Type", ct); r.status != 411 || r.code() != "length_required" {
			t.Fatalf("chunked: %d %s", r.status, r.raw)
		}
		// Larger than the largest upload: 413 without reading the body.
		big := rawRequest(t, e, "POST /api/v1/videos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+ann.token+
			"\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 999999999999\r\n\r\n", "")
		if !strings.HasPrefix(big, "HTTP/1.1 413") || !strings.Contains(big, "upload_too_large") {
			t.Fatalf("too large: %s", big)
		}
		// Not a video: 415 unsupported_media.
		r := e.upload(ann, "notes", []byte(strings.Repeat("just some text\n", 200)))
		if r.status != 415 || r.code() != "unsupported_media" || r.header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("text file: %d %s", r.status, r.raw)
		}
		// Sniffs as MP4 but is not one: 415 from ffprobe.
		fake := append([]byte("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"), bytes.Repeat([]byte{7}, 5000)...)
		if r := e.upload(ann, "fake", fake); r.status != 415 {
			t.Fatalf("fake mp4: %d %s", r.status, r.raw)
		}
		// Missing title, missing file: 422.
		if r := e.upload(ann, "", clip); r.status != 422 || r.code() != "validation_failed" {
			t.Fatalf("empty title: %d %s", r.status, r.raw)
		}
		body, ct = multipartBody(t, nil, clip, "a.mp4")
		if r := e.do("POST", "/api/v1/videos", ann.token, body, "Content-Type", ct); r.status != 422 {
			t.Fatalf("no title: %d %s", r.status, r.raw)
		}
		body, ct = multipartBody(t, map[string]string{"title": "t"}, nil, "")
		if r := e.do("POST", "/api/v1/videos", ann.token, body, "Content-Type", ct); r.status != 422 {
			t.Fatalf("no file: %d %s", r.status, r.raw)
		}
		if r := e.upload(ann, strings.Repeat("é", 201), clip); r.status != 422 {
			t.Fatalf("long title: %d %s", r.status, r.raw)
		}
		e.noLeaks(t, 0)
		if used, _, _ := e.quota.state(ann.id); used != 0 {
			t.Fatalf("refused uploads charged %d bytes", used)
		}
	})
}

func TestUploadOverQuotaAndDailyLimit(t *testing.T) {
	clip := testVideo(t, 1, 64, 48)
	withEnv(t, func(t *testing.T, e *env) {
		ann := e.user("user")
		r := e.upload(ann, "too big", clip)
		if r.status != 413 || r.code() != "quota_exceeded" {
			t.Fatalf("over quota: %d %s", r.status, r.raw)
		}
		e.noLeaks(t, 0)
	}, func(c *envConfig) { c.quota = int64(len(clip)) / 2 })
	withEnv(t, func(t *testing.T, e *env) {
		ann := e.user("user")
		e.mustUpload(ann, "first", clip)
		r := e.upload(ann, "second", clip)
		if r.status != 429 || r.code() != "daily_limit_reached" || r.header.Get("Retry-After") != "10800" {
			t.Fatalf("over the daily limit: %d %v %s", r.status, r.header, r.raw)
		}
		e.noLeaks(t, 1)
	}, func(c *envConfig) { c.daily = int64(len(clip)) + 2000 })
}

// rawRequest writes a raw HTTP/1.1 request (headers, then body) and
// returns the raw answer.
func rawRequest(t *testing.T, e *env, head, body string) string {
	t.Helper()
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, head+body); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return fmt.Sprintf("HTTP/1.1 %d\n%s", res.StatusCode, b)
}

// An upload cut off mid-body releases everything and leaves no file.
func TestUploadCutOffMidBody(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		clip := testVideo(t, 2, 320, 240)
		ann := e.user("user")
		body, ct := multipartBody(t, map[string]string{"title": "cut"}, clip, "a.mp4")
		conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /api/v1/videos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
			ann.token, ct, len(body))
		_, _ = conn.Write(body[:len(body)/2])
		// Wait until the server has admitted and is spooling, then hang up.
		eventually(t, 10*time.Second, func() string {
			if _, held, _ := e.quota.state(""); held == 1 {
				return ""
			}
			return "not admitted yet"
		})
		_ = conn.Close()
		e.noLeaks(t, 0)
		if used, _, _ := e.quota.state(ann.id); used != 0 {
			t.Fatalf("charged %d", used)
		}
		if a := e.actions(); a["UPLOAD_VIDEO:success"] != 0 {
			t.Fatalf("events: %v", a)
		}
	})
}

// A body larger than its Content-Length: the server reads the declared
// bytes only, which are not a complete form; nothing is kept.
func TestUploadLargerThanDeclared(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		clip := testVideo(t, 1, 64, 48)
		ann := e.user("user")
		body, ct := multipartBody(t, map[string]string{"title": "long"}, clip, "a.mp4")
		declared := len(body) - 500
		out := rawRequest(t, e, fmt.Sprintf("POST /api/v1/videos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
			ann.token, ct, declared), string(body))
		if !strings.HasPrefix(out, "HTTP/1.1 400") || !strings.Contains(out, "malformed_upload") {
			t.Fatalf("answer: %s", out)
		}
		e.noLeaks(t, 0)
	})
}

// Twenty concurrent uploads by one user against a quota with room for
// five: exactly the ones that fit succeed, the quota is never overshot,
// and nothing is left held or stored for the others.
func TestConcurrentUploadsTightQuota(t *testing.T) {
	clip := testVideo(t, 1, 64, 48)
	body, ct := multipartBody(t, map[string]string{"title": "race"}, clip, "a.mp4")
	quota := int64(5*len(body)) + 100
	withEnv(t, func(t *testing.T, e *env) {
		ann := e.user("user")
		var wg sync.WaitGroup
		statuses := make([]int, 20)
		for i := range statuses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i] = e.do("POST", "/api/v1/videos", ann.token, body, "Content-Type", ct).status
			}()
		}
		wg.Wait()
		ok := 0
		for _, s := range statuses {
			switch s {
			case 201:
				ok++
			case 413:
			default:
				t.Fatalf("statuses %v", statuses)
			}
		}
		if ok < 1 || int64(ok*len(clip)) > quota {
			t.Fatalf("%d uploads succeeded (statuses %v)", ok, statuses)
		}
		e.cutPosters()
		used, _, _ := e.quota.state(ann.id)
		if used > quota || e.quota.maxSeen > quota {
			t.Fatalf("quota overshot: used %d, peak %d, quota %d", used, e.quota.maxSeen, quota)
		}
		e.noLeaks(t, ok)
		mine := e.do("GET", "/api/v1/videos/mine?limit=100", ann.token, nil)
		if items := mine.body["items"].([]any); len(items) != ok {
			t.Fatalf("mine has %d videos, want %d", len(items), ok)
		}
	}, func(c *envConfig) { c.quota = quota })
}

// failingPuts fails every Put of a key with the given suffix.
type failingPuts struct {
	blob.Store
	suffix string
}

func (f failingPuts) Put(ctx context.Context, key string, r io.Reader, size int64, ct string) (blob.Info, error) {
	if strings.HasSuffix(key, f.suffix) {
		return blob.Info{}, errors.New("disk full")
	}
	return f.Store.Put(ctx, key, r, size, ct)
}

// A failure half-way through finalising (the row written, the video not
// stored) undoes everything: no row, no blob, no charge, no reservation,
// no file kept for the poster; the client gets a plain 500.
func TestUploadFailingHalfWayUndoesEverything(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		ann := e.user("user")
		r := e.upload(ann, "doomed", testVideo(t, 1, 64, 48))
		if r.status != 500 || r.code() != "internal" || strings.Contains(string(r.raw), "disk full") {
			t.Fatalf("upload: %d %s", r.status, r.raw)
		}
		e.noLeaks(t, 0)
		if used, _, objects := e.quota.state(ann.id); used != 0 || objects != 0 {
			t.Fatalf("charged %d bytes in %d objects", used, objects)
		}
		if m := e.do("GET", "/api/v1/videos/mine", ann.token, nil); len(m.body["items"].([]any)) != 0 {
			t.Fatalf("mine: %s", m.raw)
		}
		if a := e.actions(); a["UPLOAD_VIDEO:failure"] != 1 || a["UPLOAD_VIDEO:success"] != 0 {
			t.Fatalf("events %v", a)
		}
	}, func(c *envConfig) {
		c.blobs = func(s blob.Store) blob.Store { return failingPuts{Store: s, suffix: "/video.mp4"} }
	})
}

// A poster that cannot be stored does not touch its upload, which stood
// the moment it was answered: River tries the job again after a backoff,
// gives up after three attempts, and leaves no poster blob, charge or
// source file behind; the poster URL answers the placeholder, and the
// jobs API shows reel's own message, not the storage's error.
func TestPosterFailingIsRetriedThenGivenUp(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		ann := e.user("user")
		r := e.upload(ann, "no poster", testVideo(t, 1, 64, 48))
		if r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.raw)
		}
		id := r.video(t)["id"].(string)
		e.cutPosters()
		jobs := e.posterJobs(id)
		if len(jobs) != 1 || jobs[0].State != rivertype.JobStateDiscarded || jobs[0].Attempt != 3 || len(jobs[0].Errors) != 3 {
			t.Fatalf("the poster job: %v", jobStates(jobs))
		}
		admin := e.user("admin")
		list := e.do("GET", "/api/v1/jobs?video_id="+id, admin.token, nil)
		if list.status != 200 || strings.Contains(string(list.raw), "disk full") || !strings.Contains(string(list.raw), `"error":"could not store the poster"`) {
			t.Fatalf("jobs API: %d %s", list.status, list.raw)
		}
		pb := e.do("POST", "/api/v1/videos/"+id+"/playback", ann.token, nil)
		poster, _ := pb.body["poster_url"].(string)
		if p := e.do("GET", poster, "", nil); pb.status != 200 || p.status != 200 || p.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("the poster of a video without one: %d, %d %v", pb.status, p.status, p.header)
		}
		// It went without a poster: a restore does not try again.
		if d := e.do("DELETE", "/api/v1/videos/"+id, ann.token, nil); d.status != 204 {
			t.Fatalf("delete: %d", d.status)
		}
		if rs := e.do("POST", "/api/v1/videos/"+id+"/restore", ann.token, nil); rs.status != 200 {
			t.Fatalf("restore: %d", rs.status)
		}
		if jobs := e.posterJobs(id); len(jobs) != 1 {
			t.Fatalf("poster jobs after a restore: %v", jobStates(jobs))
		}
		if _, _, objects := e.quota.state(ann.id); objects != 1 {
			t.Fatalf("%d objects charged, want the video alone", objects)
		}
		e.noLeaks(t, 1)
		for _, f := range e.blobFiles() {
			if strings.HasSuffix(f, "poster.jpg") {
				t.Fatalf("poster blob left: %v", e.blobFiles())
			}
		}
	}, func(c *envConfig) {
		c.blobs = func(s blob.Store) blob.Store { return failingPuts{Store: s, suffix: "/poster.jpg"} }
	})
}

// The day's volume is committed once the video stands; when usage cannot
// be reached at that moment the upload still succeeds, and the volume,
// owed in the video's row, is committed by the maintenance job, once.
func TestUploadVolumeCommittedLaterWhenUsageIsDown(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		ann := e.user("user")
		e.limit.mu.Lock()
		e.limit.failCommits = 1
		e.limit.mu.Unlock()
		video := testVideo(t, 1, 64, 48)
		r := e.upload(ann, "counted later", video)
		if r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.raw)
		}
		size := int64(r.body["video"].(map[string]any)["size_bytes"].(float64))
		if used, held := e.limit.state(ann.id); used != 0 || held != 1 {
			t.Fatalf("before the maintenance: volume used %d with %d held, want 0 and the reservation", used, held)
		}
		for range 2 {
			if err := e.svc.Maintain(context.Background()); err != nil {
				t.Fatal(err)
			}
			if used, held := e.limit.state(ann.id); used != size || held != 0 {
				t.Fatalf("volume used %d with %d held, want %d committed", used, held, size)
			}
		}
	})
}

// downCommits is a storage service that goes down before the commit.
type downCommits struct{ videos.Quota }

func (downCommits) Commit(context.Context, string, int64, string) error { return errs.ErrUnavailable }

// An upload whose storage commit finds the storage service down fails
// with 503 and gives back everything, multipart and resumable alike: an
// unavailable dependency is not another attempt at work on the upload.
func TestUploadFailsWhenStorageIsDownAtCommit(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		ann := e.user("user")
		clip := testVideo(t, 1, 64, 48)
		if r := e.upload(ann, "storage down", clip); r.status != 503 {
			t.Fatalf("multipart: %d %s", r.status, r.raw)
		}
		c := e.tusCreate(ann, len(clip), tusMeta("title", "storage down"))
		if c.status != 201 {
			t.Fatalf("create: %d %s", c.status, c.raw)
		}
		if p := e.tusPatch(ann, c.header.Get("Location"), 0, clip); p.status != 503 {
			t.Fatalf("tus: %d %s", p.status, p.raw)
		}
		if off, r := e.tusOffset(ann, c.header.Get("Location")); r.status != 404 {
			t.Fatalf("the failed upload: %d at %d", r.status, off)
		}
		e.noLeaks(t, 0)
	}, func(c *envConfig) { c.wrapQuota = func(q videos.Quota) videos.Quota { return downCommits{q} } })
}

// lostReserves is a storage service that loses the answer of the lose-th
// next Reserve: the hold is made, the caller gets what the client returns
// then (reserve.Unanswered).
type lostReserves struct {
	videos.Quota
	lose *atomic.Int64
}

func (q lostReserves) Reserve(ctx context.Context, user string, n int64, ttl time.Duration) (reserve.Hold, error) {
	h, err := q.Quota.Reserve(ctx, user, n, ttl)
	return loseNth(q.lose, h, err)
}

// lostUploadReserves is a usage service that loses the answer of the
// lose-th next ReserveUpload, as lostReserves does storage's.
type lostUploadReserves struct {
	videos.UploadLimit
	lose *atomic.Int64
}

func (l lostUploadReserves) ReserveUpload(ctx context.Context, user string, n int64, ttl time.Duration) (reserve.Hold, error) {
	h, err := l.UploadLimit.ReserveUpload(ctx, user, n, ttl)
	return loseNth(l.lose, h, err)
}

// loseNth turns a reserve's answer into a lost one when lose counts down
// to zero with this call.
func loseNth(lose *atomic.Int64, h reserve.Hold, err error) (reserve.Hold, error) {
	if err != nil || lose.Add(-1) != 0 {
		return h, err
	}
	return reserve.Unanswered(h.ID, errs.ErrUnavailable), errs.ErrUnavailable
}

// A reservation whose answer was lost is released all the same, by an
// upload and by a poster's charge: nothing stays held until its lease
// lapses.
func TestLostReserveAnswersReleased(t *testing.T) {
	var lose, loseUsage atomic.Int64
	withEnv(t, func(t *testing.T, e *env) {
		ann := e.user("user")
		clip := testVideo(t, 1, 64, 48)
		lose.Store(1)
		if r := e.upload(ann, "storage answer lost", clip); r.status != 503 {
			t.Fatalf("storage answer lost: %d %s", r.status, r.raw)
		}
		e.noLeaks(t, 0)
		loseUsage.Store(1)
		if r := e.upload(ann, "usage answer lost", clip); r.status != 503 {
			t.Fatalf("usage answer lost: %d %s", r.status, r.raw)
		}
		e.noLeaks(t, 0)
		lose.Store(2) // the upload's reserve is answered, its poster's not
		id := e.mustUpload(ann, "poster's answer lost", clip)
		e.cutPosters()
		if got := len(posterBlobs(e)); got != 1 {
			t.Fatalf("%d posters stored, want 1", got)
		}
		e.noLeaks(t, 1)
		// A restore: its second reserve (the poster's) is lost.
		if r := e.do("DELETE", "/api/v1/videos/"+id, ann.token, nil); r.status != 204 {
			t.Fatalf("trash: %d %s", r.status, r.raw)
		}
		lose.Store(2)
		if r := e.do("POST", "/api/v1/videos/"+id+"/restore", ann.token, nil); r.status != 503 {
			t.Fatalf("restore, answer lost: %d %s", r.status, r.raw)
		}
		e.noLeaks(t, 1)
		if used, _, _ := e.quota.state(ann.id); used != 0 {
			t.Fatalf("a failed restore left %d bytes charged", used)
		}
		if r := e.do("POST", "/api/v1/videos/"+id+"/restore", ann.token, nil); r.status != 200 {
			t.Fatalf("restore: %d %s", r.status, r.raw)
		}
	}, func(c *envConfig) {
		c.wrapQuota = func(q videos.Quota) videos.Quota { return lostReserves{q, &lose} }
		c.wrapLimit = func(l videos.UploadLimit) videos.UploadLimit { return lostUploadReserves{l, &loseUsage} }
	})
}
