package media

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reel-video/reel/internal/media/mediatest"
)

// countingFFmpeg wraps the real ffmpeg in a script that notes each start.
func countingFFmpeg(t *testing.T, ffmpeg string) (path string, starts func() int) {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "starts")
	path = filepath.Join(dir, "ffmpeg")
	script := "#!/bin/sh\necho start >> '" + log + "'\nexec '" + ffmpeg + "' \"$@\"\n"
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return path, func() int {
		b, _ := os.ReadFile(log)
		return strings.Count(string(b), "start")
	}
}

// Posters asked for while the tools are busy are cut together in one
// ffmpeg run; a file that fails the run fails only itself.
func TestPostersBatch(t *testing.T) {
	ffmpeg, ffprobe := mediatest.Tools(t)
	counting, starts := countingFFmpeg(t, ffmpeg)
	p := newProber(ffprobe, counting, 0)
	dir := t.TempDir()

	type upload struct {
		path string
		info Info
		bad  bool
	}
	var uploads []upload
	for i := range 5 {
		path := mediatest.Video(t, dir, 1, 160+16*i, 120)
		info, err := p.Probe(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		uploads = append(uploads, upload{path: path, info: info})
	}
	// Sniffs as MP4 but ffmpeg cannot read it: the batch run fails.
	head, err := os.ReadFile(uploads[0].path)
	if err != nil {
		t.Fatal(err)
	}
	broken := writeFile(t, filepath.Join(dir, "broken.mp4"), head[:64])
	uploads = append(uploads, upload{path: broken, info: Info{DurationSeconds: 1}, bad: true})

	// Hold every slot, so that all the posters queue up.
	for range cap(p.idleSlots) {
		p.idleSlots <- struct{}{}
	}
	type answer struct {
		jpg string
		err error
	}
	answers := make([]answer, len(uploads))
	var wg sync.WaitGroup
	for i, u := range uploads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			jpg, err := p.Poster(t.Context(), u.path, u.info)
			answers[i] = answer{jpg, err}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := p.frames.Queued()
		if n == len(uploads) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d posters queued", n, len(uploads))
		}
		time.Sleep(5 * time.Millisecond)
	}
	for range cap(p.idleSlots) {
		<-p.idleSlots
	}
	wg.Wait()

	for i, u := range uploads {
		a := answers[i]
		if u.bad {
			if !errors.Is(a.err, ErrNoPoster) {
				t.Errorf("broken file: %q, %v; want ErrNoPoster", a.jpg, a.err)
			}
			continue
		}
		if a.err != nil {
			t.Fatalf("poster %d: %v", i, a.err)
		}
		checkJPEG(t, a.jpg, 160+16*i, 120)
		_ = os.Remove(a.jpg)
	}
	// One run for the batch, which the broken file failed, then one run
	// for each file on its own.
	if got, want := starts(), 1+len(uploads); got != want {
		t.Errorf("ffmpeg started %d times, want %d", got, want)
	}
	if n := p.frames.Queued(); n != 0 {
		t.Errorf("%d jobs left in the queue", n)
	}
}

// A poster whose caller gives up while it waits for a slot leaves the
// queue and its file. The wait runs in a synctest bubble (the video is
// made before it, since a subprocess cannot run in one): the poster is
// seen queued once every goroutine is blocked, and its deadline passes
// on the bubble's clock.
func TestPosterGivesUpInQueue(t *testing.T) {
	ffmpeg, ffprobe := mediatest.Tools(t)
	video := mediatest.Video(t, t.TempDir(), 1, 64, 48)
	synctest.Test(t, func(t *testing.T) {
		p := newProber(ffprobe, ffmpeg, 0)
		p.TempDir = t.TempDir()
		for range cap(p.idleSlots) {
			p.idleSlots <- struct{}{}
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := p.Poster(ctx, video, Info{DurationSeconds: 1})
			done <- err
		}()
		synctest.Wait()
		if n := p.frames.Queued(); n != 1 {
			t.Fatalf("%d jobs queued while the slots are busy, want 1", n)
		}
		if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Poster: %v; want the context's error", err)
		}
		if n := p.frames.Queued(); n != 0 {
			t.Errorf("%d jobs left in the queue", n)
		}
		if left, _ := os.ReadDir(p.TempDir); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
		for range cap(p.idleSlots) {
			<-p.idleSlots
		}
	})
}

// BenchmarkPosters cuts posters for 16 uploads arriving at once: each
// alone (a batch of one, as before batching) and batched.
func BenchmarkPosters(b *testing.B) {
	ffmpeg, ffprobe := mediatest.Tools(b)
	dir := b.TempDir()
	video := mediatest.Video(b, dir, 4, 640, 360)
	const uploads = 16
	for _, batch := range []int{1, maxFrameBatch} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			p := newProber(ffprobe, ffmpeg, 0)
			p.TempDir = dir
			p.frames = p.frameRunner(batch)
			for b.Loop() {
				var wg sync.WaitGroup
				for range uploads {
					wg.Add(1)
					go func() {
						defer wg.Done()
						jpg, err := p.Poster(b.Context(), video, Info{DurationSeconds: 4})
						if err != nil {
							b.Error(err)
							return
						}
						_ = os.Remove(jpg)
					}()
				}
				wg.Wait()
			}
			b.ReportMetric(float64(b.N*uploads)/b.Elapsed().Seconds(), "posters/s")
		})
	}
}

// A batch runs ffmpeg with one thread per decoder, encoder and filter
// graph, not ffmpeg's default of threads per core for each input and
// output (decision 0010).
func TestPostersBatchThreads(t *testing.T) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("no /proc to count threads in")
	}
	ffmpeg, ffprobe := mediatest.Tools(t)
	dir := t.TempDir()
	samples := filepath.Join(dir, "threads")
	// The sampler counts the threads of the script's pid, which exec makes
	// ffmpeg's, until it exits.
	wrapper := filepath.Join(dir, "ffmpeg")
	script := "#!/bin/sh\n( while [ -d /proc/$$/task ]; do ls /proc/$$/task | wc -l >> '" + samples + "'; sleep 0.005; done ) &\nexec '" + ffmpeg + "' \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	p := newProber(ffprobe, wrapper, 0)

	const n = 6
	type upload struct {
		path string
		info Info
	}
	var uploads []upload
	for i := range n {
		path := mediatest.Video(t, dir, 2, 320, 240+16*i)
		info, err := p.Probe(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		uploads = append(uploads, upload{path, info})
	}
	for range cap(p.idleSlots) {
		p.idleSlots <- struct{}{}
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, u := range uploads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			jpg, err := p.Poster(t.Context(), u.path, u.info)
			errs[i] = err
			_ = os.Remove(jpg)
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.frames.Queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d posters queued", p.frames.Queued(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for range cap(p.idleSlots) {
		<-p.idleSlots
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("poster %d: %v", i, err)
		}
	}

	b, err := os.ReadFile(samples)
	if err != nil {
		t.Fatal(err)
	}
	most := 0
	for _, f := range strings.Fields(string(b)) {
		var k int
		if _, err := fmt.Sscan(f, &k); err == nil {
			most = max(most, k)
		}
	}
	// One thread per input, and room for ffmpeg's own helpers; without
	// -threads 1 a batch runs several per input and core.
	if limit := n + 6; most > limit {
		t.Errorf("a batch of %d ran up to %d threads, want at most %d", n, most, limit)
	}
	if most == 0 {
		t.Error("no thread count sampled")
	}
}

// A poster comes from the keyframe before its time, in one run: here the
// only keyframe is the first frame, well before a tenth of the way in.
func TestPosterCutsKeyframe(t *testing.T) {
	ffmpeg, ffprobe := mediatest.Tools(t)
	counting, starts := countingFFmpeg(t, ffmpeg)
	p := newProber(ffprobe, counting, 0)
	dir := t.TempDir()
	path := clip(t, dir, "onekey.mp4", join(picture2s, []string{"-c:v", "mpeg4", "-g", "1000", "-f", "mp4"})...)
	info, err := p.Probe(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	jpg, err := p.Poster(t.Context(), path, info)
	if err != nil {
		t.Fatalf("Poster: %v", err)
	}
	t.Cleanup(func() { _ = os.Remove(jpg) })
	checkJPEG(t, jpg, 320, 240)
	if n := starts(); n != 1 {
		t.Errorf("ffmpeg started %d times, want 1: the keyframe run found no frame", n)
	}
}
