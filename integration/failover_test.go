package integration

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Two hosts, each its own network namespace with its own address, run a
// videos replica and a transcode worker on PostgreSQL + S3 behind the
// gateway (the other services run on the root namespace's loopback). Under
// steady reads through the gateway, the host serving a tus upload is
// killed (SIGKILL), then, once it is back, the host serving another is
// cut off the network: no read fails, both uploads resume on the other
// replica and arrive whole, every job finishes, and the bucket and the
// storage ledger agree to the byte.
func TestReplicasFailOverSplit(t *testing.T) {
	lab := newNetLab(t)
	file := makeNoisyVideo(t)
	content, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tusDir := t.TempDir() // the volume the videos replicas share
	hosts := []host{lab.host(1), lab.host(2)}
	trusted := "REEL_TRUSTED_PROXIES=127.0.0.1/32," + lab.subnet()
	// Egress unlimited: the readers' thousands of small ranges would
	// otherwise meet the daily limit's reservations, held a while by a
	// killed or cut-off replica's meter.
	common := []string{trusted, "REEL_GATEWAY_TRY_TIMEOUT=2s", "REEL_JOB_HEARTBEAT=1s", "REEL_TUS_DIR=" + tusDir, "REEL_DAILY_EGRESS_LIMIT=-1"}
	extra := map[string][]string{}
	for _, name := range splitOrder {
		extra[name] = common
	}
	extra["videos"] = append([]string{"REEL_TRANSCODE_WORKERS=0"}, common...)
	var vids, workers []*proc
	c := splitPrepared(t, extra, func(c *cluster) {
		first := c.procs["videos"]
		vids = []*proc{first, c.replica("videos-2", first)}
		for i, v := range vids {
			w := c.replica(fmt.Sprintf("transcode-%d", i+1), first, "REEL_TARGET=transcode", "REEL_TRANSCODE_WORKERS=1")
			workers = append(workers, w)
			lab.inNamespace(v, hosts[i])
			lab.inNamespace(w, hosts[i])
		}
		c.order = append(c.order[:len(c.order)-1], "videos-2", "transcode-1", "transcode-2", "gateway")
		gw := c.procs["gateway"]
		gw.env = append(gw.env, "REEL_VIDEOS_URL="+vids[0].base()+","+vids[1].base())
	})
	db := openDB(t, vids[0])
	logJobsOnFailure(t, db)

	ann := c.client()
	ann.login("ann@example.com", "correct horse", true)
	up := ann.upload(file, "before")
	if up.status != 201 {
		t.Fatalf("upload: %d %s", up.status, up.raw)
	}
	first := up.json(t)["video"].(map[string]any)["id"].(string)
	pb := ann.jsonDo("POST", "/api/v1/videos/"+first+"/playback", nil, 200)
	media := pb["url"].(string)

	// Readers: the video, the feed and a range of its bytes, all the
	// time, through the gateway. Not one may fail.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, failed atomic.Int64
	var failMu sync.Mutex
	var failures []string
	for _, path := range []string{"/api/v1/videos/" + first, "/api/v1/videos", media} {
		wg.Go(func() {
			rd := &client{t: t, base: c.entry, token: ann.token, http: &http.Client{Timeout: 60 * time.Second}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				a := rd.get(path)
				if path == media {
					a = rd.do("GET", path, nil, "Range", "bytes=100-4195")
				}
				reads.Add(1)
				ok := a.status == 200 || (path == media && a.status == 206 && bytes.Equal(a.raw, content[100:4196]))
				if !ok {
					failed.Add(1)
					failMu.Lock()
					failures = append(failures, fmt.Sprintf("%s %s: %d %.200s", time.Now().Format("15:04:05.000"), path, a.status, a.raw))
					failMu.Unlock()
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	stopReaders := func() {
		close(stop)
		wg.Wait()
		if failed.Load() > 0 {
			t.Fatalf("%d of %d reads failed: %v", failed.Load(), reads.Load(), failures)
		}
		t.Logf("%d reads through the gateway, none failed", reads.Load())
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}()

	// Phase 1: the host serving a tus upload dies.
	ids := []string{first}
	ids = append(ids, tusAcrossFailure(t, ann, vids, content, "killed", func(v *proc) {
		i := index(vids, v)
		v.kill()
		workers[i].kill()
		t.Logf("killed host %d (%s, %s)", i+1, v.name, workers[i].name)
		// A multipart upload meanwhile: its poster job goes to the
		// surviving worker.
		if a := ann.upload(file, "while a host is dead"); a.status != 201 {
			t.Fatalf("upload with a host dead: %d %s", a.status, a.raw)
		} else {
			ids = append(ids, a.json(t)["video"].(map[string]any)["id"].(string))
		}
		v.start()
		workers[i].start()
	}))

	// Phase 2: the host serving another is cut off the network.
	var cut host
	ids = append(ids, tusAcrossFailure(t, ann, vids, content, "cut off", func(v *proc) {
		cut = hosts[index(vids, v)]
		gw := c.procs["gateway"]
		ejected := `replica out of rotation","module":"gateway","service":"videos","replica":"` + v.addr
		before := gw.count(ejected)
		lab.cut(cut)
		t.Logf("cut host %s (%s) off the network", cut.addr, v.name)
		// An upload already on its way to the cut-off replica is lost to
		// its client (the gateway sends no body twice); one sent once the
		// gateway has taken the replica out of rotation is not.
		eventually(t, 60*time.Second, func() string {
			if gw.count(ejected) == before {
				return "the gateway has not taken " + v.addr + " out of rotation"
			}
			return ""
		})
		if a := ann.upload(file, "while a host is cut off"); a.status != 201 {
			t.Fatalf("upload with a host cut off: %d %s", a.status, a.raw)
		} else {
			ids = append(ids, a.json(t)["video"].(map[string]any)["id"].(string))
		}
	}))
	stopReaders()
	lab.heal(cut)

	// Nothing lost: every video is there, whole; every job finished.
	for _, id := range ids {
		v := ann.jsonDo("GET", "/api/v1/videos/"+id, nil, 200)
		if vv, ok := v["video"].(map[string]any); ok {
			v = vv
		}
		if v["status"] != "ready" || int(v["size_bytes"].(float64)) != len(content) {
			t.Fatalf("video %s: %v", id, v)
		}
		pb := ann.jsonDo("POST", "/api/v1/videos/"+id+"/playback", nil, 200)
		got := ann.do("GET", pb["url"].(string), nil)
		if got.status != 200 || sha256.Sum256(got.raw) != sha256.Sum256(content) {
			t.Fatalf("video %s plays %d, %d bytes, not what was sent", id, got.status, len(got.raw))
		}
	}
	// Every job finishes (ffmpeg runs at the lowest CPU priority, so a
	// busy machine makes this slow, not wrong), and every video has its
	// poster.
	eventually(t, 5*time.Minute, func() string {
		if n := count(t, db, `SELECT COUNT(*) FROM river_job WHERE kind NOT IN ('videos_maintenance', 'videos_purge') AND state <> 'completed'`); n != 0 {
			return fmt.Sprintf("%d jobs not completed", n)
		}
		return ""
	})
	for _, id := range ids {
		posterCut(t, ann, id)
	}
	wantExactStorage(t, c, ann, db)
	if n := count(t, db, `SELECT COUNT(*) FROM uploads WHERE state = 'open'`); n != 0 {
		t.Fatalf("%d tus uploads left open", n)
	}
	if entries, _ := os.ReadDir(tusDir); len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("files left in the tus directory: %v", names)
	}
}

func index(ps []*proc, p *proc) int {
	for i, q := range ps {
		if q == p {
			return i
		}
	}
	panic("no such process")
}

// tusAcrossFailure sends a tus upload of content: the first part of a
// PATCH goes out and stalls; fail is called with the videos replica that
// holds it; then the client asks the offset (HEAD) and sends the rest, as
// a tus client does. It returns the video's id.
func tusAcrossFailure(t *testing.T, cl *client, vids []*proc, content []byte, title string, fail func(*proc)) string {
	t.Helper()
	loc := cl.tusCreate(title, int64(len(content)))
	upID := loc[strings.LastIndexByte(loc, '/')+1:]
	// The rest of this PATCH is never sent: the request is abandoned, and
	// ends when the test does.
	half := len(content) / 2
	patch := cl.stalled(make(chan struct{}), "PATCH", loc, content, half, tusPatchHeaders(0)...)
	var holder *proc
	eventually(t, 60*time.Second, func() string {
		for _, v := range vids {
			if v.holds(upID) {
				holder = v
				return ""
			}
		}
		return "no videos replica holds the upload's file open"
	})
	// The replica has the first bytes on the shared disk before it fails.
	eventually(t, 30*time.Second, func() string {
		if fi, err := os.Stat(filepath.Join(tusDirOf(t, holder), upID)); err != nil || fi.Size() < int64(half)/2 {
			return fmt.Sprintf("upload file: %v", err)
		}
		return ""
	})
	fail(holder)
	// The stalled PATCH is abandoned, as a tus client does on an error or
	// a timeout (through a cut-off replica no answer may come until the
	// replica's body deadline cuts it off); it must not have succeeded.
	defer func() {
		select {
		case a := <-patch:
			if a.status/100 == 2 {
				t.Errorf("PATCH through a failed replica: %d", a.status)
			}
		default:
		}
	}()
	var id string
	eventually(t, 120*time.Second, func() string {
		h := cl.do("HEAD", loc, nil, "Tus-Resumable", "1.0.0")
		if h.status != 200 {
			return fmt.Sprintf("HEAD: %d", h.status)
		}
		if id = h.header.Get("Reel-Video-Id"); id != "" {
			return "" // complete: the last PATCH made the video
		}
		off, err := strconv.Atoi(h.header.Get("Upload-Offset"))
		if err != nil || off > len(content) {
			return fmt.Sprintf("HEAD offset %q", h.header.Get("Upload-Offset"))
		}
		a := cl.do("PATCH", loc, bytes.NewReader(content[off:]), tusPatchHeaders(int64(off))...)
		return fmt.Sprintf("PATCH from %d: %d %.200s", off, a.status, a.raw)
	})
	return id
}

func tusDirOf(t *testing.T, p *proc) string {
	for _, kv := range p.env {
		if v, ok := strings.CutPrefix(kv, "REEL_TUS_DIR="); ok {
			return v
		}
	}
	t.Fatalf("%s has no REEL_TUS_DIR", p.name)
	return ""
}

// holds reports whether p has a file of the upload open.
func (p *proc) holds(uploadID string) bool {
	if p.cmd == nil {
		return false
	}
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", p.cmd.Process.Pid))
	for _, fd := range fds {
		if target, err := os.Readlink(fd); err == nil && strings.Contains(target, uploadID) {
			return true
		}
	}
	return false
}
