package probe

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
)

// Poster frames are cut in batches.
//
// Starting ffmpeg costs far more than cutting one frame: Debian's build
// loads some hundred shared libraries, about 140 ms of CPU before it reads
// a byte, against a few ms to decode a frame. One upload per poster run
// caps a 2-core server near 14 uploads a second. So frames wait in a queue
// while the tool slots are busy, and whoever gets a slot cuts every queued
// frame (up to maxFrameBatch) in one ffmpeg run with one input and one
// output per frame: on a burst the start-up cost is shared, and a lone
// upload still starts at once. When a batch fails (one unreadable file
// fails the whole run), each of its frames is cut again on its own, so
// one bad file costs the others only time.
const maxFrameBatch = 8

// frameJob is one frame to cut: the frame at second at of the video at
// path, to the JPEG file out.
type frameJob struct {
	c    container
	path string
	at   float64
	out  string

	taken bool             // a batch holds it; guarded by frameQueue.mu
	done  chan frameResult // buffered: the batch never waits on the caller
}

type frameResult struct {
	ok  bool // false: ffmpeg ran but decoded no frame there
	err error
}

// frameQueue is the frames waiting for a tool slot.
type frameQueue struct {
	mu   sync.Mutex
	jobs []*frameJob
}

func (q *frameQueue) push(j *frameJob) {
	q.mu.Lock()
	q.jobs = append(q.jobs, j)
	q.mu.Unlock()
}

// take removes up to n jobs, oldest first, and marks them taken.
func (q *frameQueue) take(n int) []*frameJob {
	q.mu.Lock()
	defer q.mu.Unlock()
	n = min(n, len(q.jobs))
	batch := make([]*frameJob, n)
	copy(batch, q.jobs[:n])
	q.jobs = append(q.jobs[:0], q.jobs[n:]...)
	for _, j := range batch {
		j.taken = true
	}
	return batch
}

// withdraw removes j if no batch has taken it yet, and reports whether it
// did.
func (q *frameQueue) withdraw(j *frameJob) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, x := range q.jobs {
		if x == j {
			q.jobs = append(q.jobs[:i], q.jobs[i+1:]...)
			return true
		}
	}
	return false
}

func (q *frameQueue) isTaken(j *frameJob) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return j.taken
}

// cutFrame writes the frame at the given second to out. It reports false
// when ffmpeg succeeded but wrote no JPEG, which it does when seeking
// lands past the last frame. The run happens in whichever caller's batch
// takes the frame first; once a batch holds it, the caller waits for it
// even when ctx ends (a run is bounded by the Prober's timeout), so that
// no ffmpeg writes to out after cutFrame returned.
func (p *Prober) cutFrame(ctx context.Context, c container, path string, at float64, out string) (bool, error) {
	j := &frameJob{c: c, path: path, at: at, out: out, done: make(chan frameResult, 1)}
	p.frames.push(j)
	for {
		if p.frames.isTaken(j) {
			r := <-j.done
			if err := ctx.Err(); err != nil {
				return false, err
			}
			return r.ok, r.err
		}
		select {
		case r := <-j.done:
			return r.ok, r.err
		case <-ctx.Done():
			if p.frames.withdraw(j) {
				return false, ctx.Err()
			}
			// Taken meanwhile: the loop waits for its batch.
		case p.slots <- struct{}{}:
			if batch := p.frames.take(p.frameBatch); len(batch) > 0 {
				p.cutBatch(batch)
			}
			<-p.slots
		}
	}
}

// cutBatch runs ffmpeg once for the batch, holding a slot, and answers
// every job. The run is not tied to any one caller's context: the others
// still want their frames.
func (p *Prober) cutBatch(batch []*frameJob) {
	ctx := context.Background()
	var args []string
	args = append(args, "-nostdin", "-hide_banner", "-v", "error", "-y")
	for _, j := range batch {
		args = append(args, "-ss", strconv.FormatFloat(j.at, 'f', 3, 64))
		args = append(args, inputOptions(j.c)...)
		args = append(args, "-i", fileURL(j.path))
	}
	for i, j := range batch {
		args = append(args,
			// V, not v: the first video stream that is not cover art,
			// the one Probe described.
			"-map", strconv.Itoa(i)+":V:0",
			"-frames:v", "1",
			"-vf", fmt.Sprintf("scale='min(%d,iw)':-2", posterWidth),
			"-q:v", "3",
			"-f", "image2", "-c:v", "mjpeg", "-update", "1",
			fileURL(j.out))
	}
	_, err := p.runHeld(ctx, p.ffmpeg, args, 0)
	if err != nil && len(batch) > 1 {
		// Which file failed the run is unknown: each on its own.
		for _, j := range batch {
			p.cutBatch([]*frameJob{j})
		}
		return
	}
	for _, j := range batch {
		if err != nil {
			j.done <- frameResult{err: toolFailure(ErrNoPoster, err, "ffmpeg could not cut a frame")}
			continue
		}
		ok, err := isJPEG(j.out)
		j.done <- frameResult{ok: ok, err: err}
	}
}

// isJPEG reports whether the file at path starts like a JPEG.
func isJPEG(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("probe: poster: %w", err)
	}
	defer func() { _ = f.Close() }()
	head := make([]byte, 3)
	n, _ := f.Read(head)
	return n == 3 && head[0] == 0xff && head[1] == 0xd8 && head[2] == 0xff, nil
}
