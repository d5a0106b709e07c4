package videos_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/probe"
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
// poster: the worker gives back what it stored and charged. Restored, the
// video is taken again and gets its poster.
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
		if n := e.cutPosters(); n != 1 {
			t.Fatalf("the worker took %d videos", n)
		}
		mu.Lock()
		before = nil
		mu.Unlock()
		eventually(t, 5*time.Second, func() string {
			if used, _, objects := e.quota.state(ann.id); used != 0 || objects != 0 {
				return fmt.Sprintf("a trashed video charges %d bytes in %d objects", used, objects)
			}
			if p := posterBlobs(e); len(p) != 0 {
				return fmt.Sprintf("poster blob left: %v", p)
			}
			return ""
		})
		// In the trash, the video is not taken.
		if n := e.cutPosters(); n != 0 {
			t.Fatalf("the worker took %d trashed videos", n)
		}
		if rs := e.do("POST", "/api/v1/videos/"+id+"/restore", ann.token, nil); rs.status != 200 {
			t.Fatalf("restore: %d %s", rs.status, rs.raw)
		}
		if n := e.cutPosters(); n != 1 {
			t.Fatalf("the worker took %d restored videos", n)
		}
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
// another replica, or this process restarted), the worker cuts the poster
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
		if n := e.cutPosters(); n != 1 {
			t.Fatalf("the worker took %d videos", n)
		}
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
// of the disk); otherwise the worker cuts the poster from the stored video.
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

		if n := e.cutPosters(); n != 2 {
			t.Fatalf("the worker took %d videos, want 2", n)
		}
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

func (p stallingPoster) Poster(ctx context.Context, path string, info probe.Info) (string, error) {
	p.started <- struct{}{}
	<-ctx.Done()
	return "", ctx.Err()
}

// A worker that stops in the middle of a cut hands the video back at
// once: the next worker takes it without waiting for the lease to end.
func TestPosterWorkerStoppingHandsBack(t *testing.T) {
	started := make(chan struct{}, 1)
	withEnv(t, func(t *testing.T, e *env) {
		ann := e.user("user")
		if r := e.upload(ann, "stopped", testVideo(t, 1, 64, 48)); r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.raw)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := e.svc.CutPosters(ctx)
			done <- err
		}()
		<-started
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("stopped worker: %v", err)
		}
		// The same clock: no lease has run out, yet the video is taken.
		go func() { <-started }()
		cctx, ccancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer ccancel()
		if n, _ := e.svc.CutPosters(cctx); n != 1 {
			t.Fatalf("the next worker took %d videos, want the one handed back", n)
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

func (p slowPoster) Poster(ctx context.Context, path string, info probe.Info) (string, error) {
	if p.fails.Add(-1) >= 0 {
		return "", fmt.Errorf("%w: ffmpeg did not finish (%w)", probe.ErrNoPoster, context.DeadlineExceeded)
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
		if n := e.cutPosters(); n != 1 {
			t.Fatalf("the worker took %d videos", n)
		}
		if n := e.cutPosters(); n != 0 {
			t.Fatalf("taken again without a pause: %d", n)
		}
		e.advance(2 * time.Minute)
		if n := e.cutPosters(); n != 1 {
			t.Fatalf("the retry took %d videos", n)
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
