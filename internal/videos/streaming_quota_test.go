package videos_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/media"
	"github.com/reel-video/reel/internal/media/mediatest"
	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/videos"
)

// The ladder against the storage quota and the trash, with the real
// storage service: its ledger must match what is stored to the byte.

// commitHook is a quota that calls after (when set) once a commit into an
// object has succeeded.
type commitHook struct {
	videos.Quota
	mu    sync.Mutex
	after func(object string)
}

func (h *commitHook) Commit(ctx context.Context, id string, actual int64, object string) error {
	err := h.Quota.Commit(ctx, id, actual, object)
	h.mu.Lock()
	f := h.after
	h.mu.Unlock()
	if err == nil && f != nil {
		f(object)
	}
	return err
}

func (h *commitHook) set(f func(object string)) {
	h.mu.Lock()
	h.after = f
	h.mu.Unlock()
}

// ledgerExact checks that the owner's storage ledger counts exactly the
// bytes stored for the video, with nothing reserved.
func (e *env) ledgerExact(t *testing.T, rs *realServices, owner, id string, want int64) {
	t.Helper()
	u, err := rs.storage.Usage(context.Background(), owner)
	if err != nil {
		t.Fatal(err)
	}
	if u.UsedBytes != want || u.ReservedBytes != 0 {
		t.Fatalf("storage ledger: %d used, %d reserved; want %d used (%d stored)", u.UsedBytes, u.ReservedBytes, want, e.storedBytes(id))
	}
}

func TestStreamingQuotaSkipsRungs(t *testing.T) {
	mediatest.Tools(t)
	hook := &commitHook{}
	withRealServices(t, 1<<30, 1<<30, func(t *testing.T, e *env, rs *realServices) {
		ctx := context.Background()
		ann := e.user("user")
		id := e.mustUpload(ann, "tight", testVideo(t, 3, 854, 480))
		e.transcode(id, videos.StageFirst) // the remux: 480
		e.ledgerExact(t, rs, ann.id, id, e.storedBytes(id))

		// The quota runs out once the 240 rung is stored: the 360 rung
		// is skipped and says why; the others stay.
		hook.set(func(object string) {
			if strings.HasSuffix(object, "/240.m3u8") {
				u, err := rs.storage.Usage(ctx, ann.id)
				if err == nil {
					err = rs.storage.SetQuota(ctx, ann.id, u.UsedBytes)
				}
				if err != nil {
					t.Error(err)
				}
			}
		})
		e.transcode(id, videos.StageRest)
		hook.set(nil)
		st := e.streaming(ann, id)
		if st.State != "done" || !slices.Equal(st.RenditionsDone, []int{240, 480}) || len(st.RenditionsSkipped) != 1 ||
			st.RenditionsSkipped[0].Height != 360 || st.RenditionsSkipped[0].Reason != "quota_exceeded" {
			t.Fatalf("streaming: %+v", st)
		}
		for _, f := range e.blobFiles() {
			if strings.Contains(f, "360.") {
				t.Fatalf("a skipped rung left %s", f)
			}
		}
		e.ledgerExact(t, rs, ann.id, id, e.storedBytes(id))
		g := e.grant(ann, id)
		if !slices.Equal(g.heights(), []int{240, 480}) {
			t.Fatalf("grant: %+v", g)
		}
		if hs, _ := e.walkHLS(t, id, *g.HLSURL); !slices.Equal(hs, []int{480, 240}) {
			t.Fatalf("master lists %v", hs)
		}
		r := e.do("GET", strings.Replace(*g.HLSURL, "master.m3u8", "360.m3u8", 1), "", nil)
		if r.status != 404 || !strings.Contains(r.body["detail"].(string), "rendition 360 was skipped: quota_exceeded") {
			t.Fatalf("360.m3u8: %d %s", r.status, r.raw)
		}
		// The original plays throughout.
		if r := e.do("GET", g.URL, "", nil, "Range", "bytes=0-9"); r.status != 206 {
			t.Fatalf("original: %d", r.status)
		}

		// With room again, the rest run again makes the skipped rung
		// only, and charges nothing twice.
		if err := rs.storage.SetQuota(ctx, ann.id, 1<<30); err != nil {
			t.Fatal(err)
		}
		e.transcode(id, videos.StageRest)
		if st := e.streaming(ann, id); st.State != "done" || !slices.Equal(st.RenditionsDone, []int{240, 360, 480}) || len(st.RenditionsSkipped) != 0 {
			t.Fatalf("after a retry with room: %+v", st)
		}
		e.checkRungs(t, id, 3, map[int]int{240: 428, 360: 640, 480: 854}) // 240×854/480 is 427, even 428
		e.ledgerExact(t, rs, ann.id, id, e.storedBytes(id))
		e.noLeaks(t, 1)
	}, func(c *envConfig) { c.wrapQuota = func(q videos.Quota) videos.Quota { hook.Quota = q; return hook } })
}

// gateRunner holds the ladder's encode (the first ffmpeg run with a
// filter graph once armed): hold says how.
type gateRunner struct {
	media.Runner
	mu   sync.Mutex
	hold func(ctx context.Context, run func() error) error
}

func (g *gateRunner) arm(hold func(ctx context.Context, run func() error) error) {
	g.mu.Lock()
	g.hold = hold
	g.mu.Unlock()
}

func (g *gateRunner) Run(ctx context.Context, name string, args []string, stdout io.Writer) error {
	run := func() error { return g.Runner.Run(ctx, name, args, stdout) }
	g.mu.Lock()
	hold := g.hold
	if hold != nil && slices.Contains(args, "-filter_complex") {
		g.hold = nil
	} else {
		hold = nil
	}
	g.mu.Unlock()
	if hold == nil {
		return run()
	}
	return hold(ctx, run)
}

func TestStreamingTrashMidLadder(t *testing.T) {
	mediatest.Tools(t)
	gate := &gateRunner{Runner: media.ExecRunner{}}
	withRealServices(t, 1<<30, 1<<30, func(t *testing.T, e *env, rs *realServices) {
		ctx := context.Background()
		ann := e.user("user")
		clip := testVideo(t, 3, 640, 360)

		// Trashed while ffmpeg encodes the rest: ffmpeg is stopped (the
		// job's own watch notices), and the trash frees every byte of
		// the video, its first rung included.
		id := e.mustUpload(ann, "encoding", clip)
		e.transcode(id, videos.StageFirst)
		started := make(chan struct{})
		gate.arm(func(ctx context.Context, _ func() error) error {
			close(started)
			<-ctx.Done() // an encode that would run long
			return ctx.Err()
		})
		done := make(chan error, 1)
		go func() { done <- e.svc.Transcode(ctx, id, videos.StageRest) }()
		<-started
		if r := e.do("DELETE", "/api/v1/videos/"+id, ann.token, nil); r.status != 204 {
			t.Fatalf("delete: %d", r.status)
		}
		if err := <-done; !errors.Is(err, videos.ErrGone) {
			t.Fatalf("transcode of a trashed video: %v", err)
		}
		e.ledgerExact(t, rs, ann.id, id, 0)
		// A restore charges every file again, renditions included, and
		// the rest of the ladder can follow.
		if r := e.do("POST", "/api/v1/videos/"+id+"/restore", ann.token, nil); r.status != 200 {
			t.Fatalf("restore: %d %s", r.status, r.raw)
		}
		e.ledgerExact(t, rs, ann.id, id, e.storedBytes(id))
		e.transcode(id, videos.StageRest)
		if st := e.streaming(ann, id); st.State != "done" || !slices.Equal(st.RenditionsDone, []int{240, 360}) {
			t.Fatalf("after the restore: %+v", st)
		}
		e.ledgerExact(t, rs, ann.id, id, e.storedBytes(id))

		// Trashed after ffmpeg is done and before the rungs are recorded:
		// what was stored for them is given back.
		id2 := e.mustUpload(ann, "storing", clip)
		e.transcode(id2, videos.StageFirst)
		gate.arm(func(ctx context.Context, run func() error) error {
			err := run()
			if derr := e.svc.Delete(ctx, authn.Caller{UserID: ann.id, Role: "user"}, id2); derr != nil {
				t.Error(derr)
			}
			return err
		})
		if err := e.svc.Transcode(ctx, id2, videos.StageRest); !errors.Is(err, videos.ErrGone) {
			t.Fatalf("transcode of a video trashed before its rungs were recorded: %v", err)
		}
		if _, err := os.Stat(filepath.Join(e.dirs.blobs, "videos", id2, "240.mp4")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a rung stored for a trashed video was not given back: %v", err)
		}
		e.ledgerExact(t, rs, ann.id, id, e.storedBytes(id)) // the first video's bytes only
		if st := e.streaming(ann, id2); !slices.Equal(st.RenditionsDone, []int{360}) {
			t.Fatalf("the trashed video's renditions: %+v", st)
		}

		// The purge deletes every file of a video, renditions included.
		if r := e.do("DELETE", "/api/v1/videos/"+id, ann.token, nil); r.status != 204 {
			t.Fatalf("delete: %d", r.status)
		}
		e.advance(31 * 24 * time.Hour)
		if n, err := e.svc.Purge(ctx); err != nil || n != 2 {
			t.Fatalf("purged %d: %v", n, err)
		}
		e.ledgerExact(t, rs, ann.id, id, 0)
		e.noLeaks(t, 0)
	}, func(c *envConfig) { c.runner = gate })
}
