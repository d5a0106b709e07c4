package videos_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/reel-video/reel/internal/media"
	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/videos"
)

// hookedPuts runs before() ahead of every Put of a key with the given
// suffix.
type hookedPuts struct {
	blob.Store
	suffix string
	mu     *sync.Mutex
	before *func()
}

func (h hookedPuts) Put(ctx context.Context, key string, r io.Reader, size int64, ct string) (blob.Info, error) {
	h.mu.Lock()
	f := *h.before
	h.mu.Unlock()
	if strings.HasSuffix(key, h.suffix) && f != nil {
		f()
	}
	return h.Store.Put(ctx, key, r, size, ct)
}

func posterBlobs(e *env) []string {
	var out []string
	for _, f := range e.blobFiles() {
		if strings.HasSuffix(f, "poster.jpg") {
			out = append(out, f)
		}
	}
	return out
}

// A video that goes to the trash while its poster is being cut gets no
// poster: the trash cancels the job, which gives back what it stored and
// charged. Restored, the video gets a new poster job, and its poster.
func TestPosterOfVideoTrashedMeanwhile(t *testing.T) {
	var (
		mu     sync.Mutex
		before func()
	)
	withEnv(t, func(t *testing.T, e *env) {
		ann := e.user("user")
		r := e.upload(ann, "trashed meanwhile", testVideo(t, 1, 64, 48))
		if r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.raw)
		}
		id := r.video(t)["id"].(string)
		mu.Lock()
		before = func() {
			if d := e.do("DELETE", "/api/v1/videos/"+id, ann.token, nil); d.status != 204 {
				t.Errorf("delete: %d %s", d.status, d.raw)
			}
		}
		mu.Unlock()
		e.cutPosters()
		mu.Lock()
		before = nil
		mu.Unlock()
		if jobs := e.posterJobs(id); len(jobs) != 1 || (jobs[0].State != rivertype.JobStateCancelled && jobs[0].State != rivertype.JobStateCompleted) {
			t.Fatalf("the poster job of a video trashed meanwhile: %v", jobStates(jobs))
		}
		eventually(t, 5*time.Second, func() string {
			if used, _, objects := e.quota.state(ann.id); used != 0 || objects != 0 {
				return fmt.Sprintf("a trashed video charges %d bytes in %d objects", used, objects)
			}
			if p := posterBlobs(e); len(p) != 0 {
				return fmt.Sprintf("poster blob left: %v", p)
			}
			return ""
		})
		// Restored, the video gets a poster job again.
		if rs := e.do("POST", "/api/v1/videos/"+id+"/restore", ann.token, nil); rs.status != 200 {
			t.Fatalf("restore: %d %s", rs.status, rs.raw)
		}
		if jobs := e.posterJobs(id); len(jobs) != 2 || jobs[0].State == rivertype.JobStateCancelled {
			t.Fatalf("poster jobs after the restore: %v", jobStates(jobs))
		}
		e.cutPosters()
		if _, _, objects := e.quota.state(ann.id); objects != 2 || len(posterBlobs(e)) != 1 {
			t.Fatalf("%d objects charged, poster blobs %v", objects, posterBlobs(e))
		}
		e.noLeaks(t, 1)
	}, func(c *envConfig) {
		c.blobs = func(s blob.Store) blob.Store {
			return hookedPuts{Store: s, suffix: "/poster.jpg", mu: &mu, before: &before}
		}
	})
}

// Without the file finalise kept for it (the upload was finalised by
// another replica, or this process restarted), the job cuts the poster
// from the stored video.
func TestPosterFromStoredVideo(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		ann := e.user("user")
		r := e.upload(ann, "from the store", testVideo(t, 1, 64, 48))
		if r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.raw)
		}
		sources, _ := filepath.Glob(filepath.Join(e.dirs.spool, "upload-*"))
		if len(sources) != 1 {
			t.Fatalf("spool after the upload: %v", sources)
		}
		if err := os.Remove(sources[0]); err != nil {
			t.Fatal(err)
		}
		e.cutPosters()
		if _, _, objects := e.quota.state(ann.id); objects != 2 || len(posterBlobs(e)) != 1 {
			t.Fatalf("%d objects charged, poster blobs %v", objects, posterBlobs(e))
		}
		e.noLeaks(t, 1)
	})
}

// copyingStore hides the disk store's Import, as a store that copies an
// upload elsewhere (S3) does: a poster source then holds its own bytes in
// the spool.
type copyingStore struct{ blob.Store }

// With a store that copies uploads away, an upload stays in the spool for
// its poster only while the disk keeps its reserve free after it (a tenth
// of the disk); otherwise the job cuts the poster from the stored video.
func TestPosterSourceNeedsRoom(t *testing.T) {
	const total = 100 << 30 // a reserve of 10 GiB
	var free atomic.Uint64
	withEnv(t, func(t *testing.T, e *env) {
		e.svc.SetSpoolSpace(func(string) (uint64, uint64, error) { return free.Load(), total, nil })
		ann := e.user("user")
		sources := func() []string {
			f, _ := filepath.Glob(filepath.Join(e.dirs.spool, "upload-*.poster-source"))
			return f
		}

		free.Store(50 << 30)
		if r := e.upload(ann, "room", testVideo(t, 1, 64, 48)); r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.raw)
		}
		if s := sources(); len(s) != 1 {
			t.Fatalf("poster sources with room to spare: %v", s)
		}

		free.Store(10<<30 + 1024) // the reserve and less than a video
		if r := e.upload(ann, "no room", testVideo(t, 1, 64, 48)); r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.raw)
		}
		if s := sources(); len(s) != 1 {
			t.Fatalf("poster sources short of room: %v", s)
		}
		if n := e.svc.PosterCounts().SourcesSkipped.Load(); n != 1 {
			t.Fatalf("SourcesSkipped = %d, want 1", n)
		}

		e.cutPosters()
		if got := len(posterBlobs(e)); got != 2 {
			t.Fatalf("%d posters stored, want 2", got)
		}
		e.noLeaks(t, 2)
	}, func(c *envConfig) {
		c.blobs = func(s blob.Store) blob.Store { return copyingStore{s} }
	})
}

// stallingPoster's Poster waits for its context to end, as a cut does
// when the process stops under it.
type stallingPoster struct {
	videos.Prober
	started chan struct{}
}

func (p stallingPoster) Poster(ctx context.Context, path string, info media.Info) (string, error) {
	p.started <- struct{}{}
	<-ctx.Done()
	return "", ctx.Err()
}

// A process that stops in the middle of a cut hands the job back at once,
// without counting the attempt: the next process takes it as new.
func TestPosterWorkerStoppingHandsBack(t *testing.T) {
	started := make(chan struct{}, 1)
	withEnv(t, func(t *testing.T, e *env) {
		ann := e.user("user")
		r := e.upload(ann, "stopped", testVideo(t, 1, 64, 48))
		if r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.raw)
		}
		id := r.video(t)["id"].(string)
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.svc.RunJobs(ctx) }()
		<-started
		stop()
		if err := <-done; err != nil {
			t.Fatalf("stopping: %v", err)
		}
		jobs := e.posterJobs(id)
		if len(jobs) != 1 || jobs[0].State != rivertype.JobStateAvailable || jobs[0].Attempt != 0 {
			t.Fatalf("the job of a stopped process: %v, attempt %d", jobStates(jobs), jobs[0].Attempt)
		}
	}, func(c *envConfig) {
		c.prober = func(p videos.Prober) videos.Prober { return stallingPoster{Prober: p, started: started} }
		c.stopGrace = 100 * time.Millisecond
	})
}

// A poster job whose video goes to the trash behind River's back (another
// replica's trash, whose cancellation River here has not seen yet) stops
// within a second: its watchdog sees the video gone and cancels the work.
func TestPosterWatchdogStopsWork(t *testing.T) {
	started := make(chan struct{}, 1)
	withEnv(t, func(t *testing.T, e *env) {
		ann := e.user("user")
		r := e.upload(ann, "watched", testVideo(t, 1, 64, 48))
		if r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.raw)
		}
		id := r.video(t)["id"].(string)
		e.startWorkers()
		<-started
		if _, err := e.db.W.Exec(`UPDATE videos SET deleted_at = $1 WHERE id = $2`, time.Now().UnixMicro(), id); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, func() string {
			if jobs := e.posterJobs(id); len(jobs) != 1 || jobs[0].State != rivertype.JobStateCancelled {
				return fmt.Sprintf("the job of a video trashed elsewhere: %v", jobStates(jobs))
			}
			return ""
		})
		if errs := e.posterJobs(id)[0].Errors; len(errs) != 1 || !strings.Contains(errs[0].Error, "the video went to the trash") {
			t.Fatalf("the job's error: %+v", errs)
		}
	}, func(c *envConfig) {
		c.prober = func(p videos.Prober) videos.Prober { return stallingPoster{Prober: p, started: started} }
	})
}

// slowPoster's Poster fails as a run out of time does, fails times over,
// then cuts.
type slowPoster struct {
	videos.Prober
	fails *atomic.Int32
}

func (p slowPoster) Poster(ctx context.Context, path string, info media.Info) (string, error) {
	if p.fails.Add(-1) >= 0 {
		return "", fmt.Errorf("%w: ffmpeg did not finish (%w)", media.ErrNoPoster, context.DeadlineExceeded)
	}
	return p.Prober.Poster(ctx, path, info)
}

// A poster run that ran out of time (it waits for idle cores, which a busy
// machine may not have had) is tried again, not given up at once.
func TestPosterTimeoutIsRetried(t *testing.T) {
	fails := new(atomic.Int32)
	withEnv(t, func(t *testing.T, e *env) {
		fails.Store(1) // on each engine
		ann := e.user("user")
		r := e.upload(ann, "slow", testVideo(t, 1, 64, 48))
		if r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.raw)
		}
		id := r.video(t)["id"].(string)
		e.cutPosters()
		jobs := e.posterJobs(id)
		if len(jobs) != 1 || jobs[0].State != rivertype.JobStateCompleted || jobs[0].Attempt != 2 || len(jobs[0].Errors) != 1 {
			t.Fatalf("the job: %v, attempt %d, errors %+v", jobStates(jobs), jobs[0].Attempt, jobs[0].Errors)
		}
		if msg := jobs[0].Errors[0].Error; msg != "ffmpeg could not cut the poster" {
			t.Fatalf("the recorded error is not reel's own message: %q", msg)
		}
		pb := e.do("POST", "/api/v1/videos/"+id+"/playback", ann.token, nil)
		poster, _ := pb.body["poster_url"].(string)
		if p := e.do("GET", poster, "", nil); pb.status != 200 || p.status != 200 {
			t.Fatalf("poster after the retry: playback %d, poster %d", pb.status, p.status)
		}
		e.noLeaks(t, 1)
	}, func(c *envConfig) {
		c.prober = func(p videos.Prober) videos.Prober { return slowPoster{Prober: p, fails: fails} }
	})
}

func jobStates(jobs []*rivertype.JobRow) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = string(j.State)
	}
	return out
}
