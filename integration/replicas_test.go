package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Helpers of the tests with several replicas of a service: transcode
// workers beside the videos service, the bucket's contents, the stream
// decoded whole.

// streamingEnv turns adaptive streaming on (the harness turns it off) and
// makes a dead worker's streaming job be taken again within seconds.
var streamingEnv = []string{"REEL_STREAMING=on", "REEL_JOB_HEARTBEAT=1s"}

// replica adds a process that runs like from (same database, blob store,
// keys and service URLs) with its own address and data directory, and
// env on top (a variable given twice takes its last value).
func (c *cluster) replica(name string, from *proc, env ...string) *proc {
	c.t.Helper()
	var base []string
	for _, kv := range from.env {
		if strings.HasPrefix(kv, "REEL_HTTP_ADDR=") || strings.HasPrefix(kv, "REEL_DATA_DIR=") {
			continue
		}
		base = append(base, kv)
	}
	dataDir := c.t.TempDir()
	p := c.add(name, append(append(base, "REEL_DATA_DIR="+dataDir), env...)...)
	p.dataDir, p.dbURL = dataDir, from.dbURL
	return p
}

// childArgs are the command lines of the processes whose parent is p.
func (p *proc) childArgs() []string {
	if p.cmd == nil {
		return nil
	}
	pid := strconv.Itoa(p.cmd.Process.Pid)
	var out []string
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, stat := range stats {
		b, err := os.ReadFile(stat)
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces, so cut at the
		// last parenthesis.
		s := string(b)
		end := strings.LastIndexByte(s, ')')
		if end < 0 {
			continue
		}
		if f := strings.Fields(s[end+1:]); len(f) > 1 && f[1] == pid {
			cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(stat), "cmdline"))
			out = append(out, strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return out
}

// encodes reports whether p runs an ffmpeg that encodes H.264: a
// transcode (posters and storyboards encode JPEG).
func (p *proc) encodes() bool {
	for _, c := range p.childArgs() {
		if f := strings.Fields(c); len(f) > 0 && filepath.Base(f[0]) == "ffmpeg" && strings.Contains(c, "libx264") {
			return true
		}
	}
	return false
}

// count is how many times p's whole log holds s.
func (p *proc) count(s string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Count(p.log.Bytes(), []byte(s))
}

// kill sends SIGKILL and waits for the exit.
func (p *proc) kill() {
	p.t.Helper()
	_ = p.cmd.Process.Kill()
	_ = p.wait()
}

// logJobsOnFailure logs the queue's jobs if the test fails.
func logJobsOnFailure(t *testing.T, db *sqldb.DB) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		rows, err := db.R.QueryContext(context.Background(), `SELECT id, kind, state, attempt, COALESCE(attempted_by::text, ''), errors::text, metadata::text FROM river_job ORDER BY id`)
		if err != nil {
			t.Logf("jobs: %v", err)
			return
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			var attempt int
			var kind, state, by, errs, meta string
			_ = rows.Scan(&id, &kind, &state, &attempt, &by, &errs, &meta)
			t.Logf("job %d %s %s attempt %d by %s errors %.400s meta %.300s", id, kind, state, attempt, by, errs, meta)
		}
	})
}

// bucketObjects lists the bucket: key → size.
func bucketObjects(t *testing.T, blobURL string) map[string]int64 {
	t.Helper()
	mc, cfg := bucketClient(t, blobURL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[string]int64{}
	for o := range mc.ListObjects(ctx, cfg.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		out[o.Key] = o.Size
	}
	return out
}

// liveObjects are the blob keys the videos database holds for live
// (untrashed) videos, with their recorded sizes.
func liveObjects(t *testing.T, db *sqldb.DB) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, q := range []string{
		`SELECT video_key, size_bytes FROM videos WHERE deleted_at IS NULL AND video_key <> ''`,
		`SELECT poster_key, poster_bytes FROM videos WHERE deleted_at IS NULL AND poster_key <> ''`,
		`SELECT f.blob_key, f.size_bytes FROM video_files f JOIN videos v ON v.id = f.video_id WHERE v.deleted_at IS NULL`,
	} {
		rows, err := db.R.QueryContext(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for rows.Next() {
			var k string
			var n int64
			if err := rows.Scan(&k, &n); err != nil {
				t.Fatal(err)
			}
			out[k] = n
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// wantExactStorage checks, once the figures settle, that every object in
// the bucket belongs to a live video, that every live video's object is
// there with its recorded size, and that the owner's storage ledger is
// the sum of them to the byte, with nothing reserved.
func wantExactStorage(t *testing.T, c *cluster, cl *client, db *sqldb.DB) {
	t.Helper()
	eventually(t, 60*time.Second, func() string {
		objects, live := bucketObjects(t, c.blob), liveObjects(t, db)
		var sum int64
		for k, n := range objects {
			want, ok := live[k]
			if !ok {
				return fmt.Sprintf("orphan blob %s (%d bytes); live: %v", k, n, live)
			}
			if want != n {
				return fmt.Sprintf("blob %s holds %d bytes, its row says %d", k, n, want)
			}
			sum += n
		}
		for k := range live {
			if _, ok := objects[k]; !ok {
				return fmt.Sprintf("blob %s of a live video is missing", k)
			}
		}
		a := cl.do("GET", "/api/v1/storage/me", nil)
		if a.status != 200 {
			return fmt.Sprintf("storage/me: %d %s", a.status, a.raw)
		}
		st := a.json(t)
		if u, r := int64(st["used_bytes"].(float64)), int64(st["reserved_bytes"].(float64)); u != sum || r != 0 {
			return fmt.Sprintf("storage ledger used %d reserved %d; the bucket holds %d bytes in %d objects", u, r, sum, len(objects))
		}
		return ""
	})
}

// streamingDone waits until the video's ladder is done and returns the
// video.
func streamingDone(t *testing.T, cl *client, id string, within time.Duration) map[string]any {
	t.Helper()
	var v map[string]any
	eventually(t, within, func() string {
		a := cl.do("GET", "/api/v1/videos/"+id, nil)
		if a.status != 200 {
			return fmt.Sprintf("video: %d %s", a.status, a.raw)
		}
		v = a.json(t)
		if vv, ok := v["video"].(map[string]any); ok {
			v = vv
		}
		st, _ := v["streaming"].(map[string]any)
		if st == nil || st["state"] != "done" {
			return fmt.Sprintf("streaming not done: %v", v["streaming"])
		}
		return ""
	})
	return v
}

// decodeHLS asks a playback grant and has ffmpeg decode the whole HLS
// stream over HTTP through its signed URLs; it returns the grant.
func decodeHLS(t *testing.T, cl *client, id string) map[string]any {
	t.Helper()
	var pb map[string]any
	eventually(t, 30*time.Second, func() string {
		a := cl.do("POST", "/api/v1/videos/"+id+"/playback", nil)
		if a.status != 200 {
			return fmt.Sprintf("playback: %d %s", a.status, a.raw)
		}
		pb = a.json(t)
		if s, _ := pb["hls_url"].(string); s == "" {
			return fmt.Sprintf("no hls_url: %v", pb)
		}
		return ""
	})
	hls := cl.url(pb["hls_url"].(string))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", hls, "-map", "0", "-f", "null", "-")
	if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("ffmpeg -i %s: %v\n%s", hls, err, out)
	}
	return pb
}

// makeTranscodeClip writes an MPEG-4 part 2 clip, which is not H.264 and
// so is encoded (not remuxed) into every rung of its ladder.
func makeTranscodeClip(t *testing.T, seconds int, size string) string {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		makeVideo(t, 1) // fails or skips, saying why
	}
	out := filepath.Join(t.TempDir(), "clip.mp4")
	cmd := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=duration=%d:size=%s:rate=25", seconds, size),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:duration=%d", seconds),
		"-c:v", "mpeg4", "-q:v", "5", "-c:a", "aac", "-shortest", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}
