package media

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// maxStdout bounds stdout when the caller expects none (ffmpeg).
const maxStdout = 64 << 10

// How tool runs share the machine with the requests reel answers.
const (
	// foregroundNice is the priority of a run a request waits for
	// (ffprobe): lower than reel's, so that a burst of them leaves the
	// cores to the requests that need none, but not so low that its own
	// request starves.
	foregroundNice = 10
	// backgroundNice is the priority of a run nobody waits for (ffmpeg
	// cutting posters) where SCHED_IDLE is not to be had (toBackground).
	backgroundNice = 19
	// backgroundWall is how many timeouts a background run may take on
	// the clock where its CPU time is bounded (cpuBounded). It runs on
	// cores nothing else wants, so on a busy server its time on the clock
	// says nothing of the file; the clock only catches a tool stuck on
	// I/O.
	backgroundWall = 10
)

// cpuLimit is the CPU time a background run may use given the timeout: in
// whole seconds, as RLIMIT_CPU counts, and at least one.
func cpuLimit(timeout time.Duration) time.Duration {
	return max(timeout.Round(time.Second), time.Second)
}

// ToolError is ffprobe or ffmpeg failing on a file. Its Error text names
// the failure without the tool's words, which may quote server paths and
// file contents, so it is safe to show a client; Status and Stderr are for
// logs. It unwraps to ErrNotVideo (from Probe) or ErrNoPoster (from
// Poster), and to context.DeadlineExceeded when the tool ran out of time.
type ToolError struct {
	Tool   string // "ffprobe" or "ffmpeg"
	Status string // how the tool ended when it failed, e.g. "exit status 1", "signal: killed"
	Stderr string // the tool's diagnostics, cut to 64 KiB
	err    error
}

func (e *ToolError) Error() string {
	if e.err == nil { // a ToolError made outside this package
		return e.Tool + " failed"
	}
	return e.err.Error()
}

// Unwrap returns the client-safe error: ErrNotVideo or ErrNoPoster,
// wrapped with a reason.
func (e *ToolError) Unwrap() error { return e.err }

// result is what a successful run printed.
type result struct {
	stdout []byte
	stderr string
}

type failure int

const (
	exited     failure = iota // exited non-zero, or died of a signal
	timedOut                  // killed at the Prober's timeout
	outOfCPU                  // killed for using the Prober's timeout in CPU time
	overflowed                // killed for printing more than allowed
)

// runError is a run that started and then failed; the file is to blame
// (or its size), not the server.
type runError struct {
	tool   string
	kind   failure
	after  time.Duration
	status string
	stderr string
}

func (e *runError) Error() string { return e.tool + ": " + e.status }

// run runs one tool in the foreground, at most len(p.slots) at a time,
// under the Prober's timeout. It returns ctx's error when ctx ends first
// (while waiting for a slot too), a *runError when the tool failed on its
// input, and any other error when the tool could not be started.
func (p *Prober) run(ctx context.Context, bin string, args []string, stdoutLimit int) (result, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
	defer func() { <-p.slots }()
	return p.runHeld(ctx, bin, args, stdoutLimit, false)
}

// runHeld is run for a caller that already holds a slot. A background run
// (one nobody waits for) gets only the cores nothing else wants
// (toBackground) and, where it can be bounded so, the Prober's timeout in
// CPU time rather than on the clock.
func (p *Prober) runHeld(ctx context.Context, bin string, args []string, stdoutLimit int, background bool) (result, error) {
	wall, cpu := p.timeout, cpuLimit(p.timeout)
	if background && cpuBounded {
		wall *= backgroundWall
	}
	// The timeout starts once a slot is free: waiting in the queue on a
	// busy server does not make a file "not a video".
	runCtx, cancel := context.WithTimeout(ctx, wall)
	defer cancel()
	if stdoutLimit <= 0 {
		stdoutLimit = maxStdout
	}
	stdout := &capWriter{limit: stdoutLimit, onFull: cancel}
	lower := func(pid int) { lowerPriority(pid, foregroundNice) }
	if background {
		lower = func(pid int) { toBackground(pid, cpu) }
	}
	tool := filepath.Base(bin)
	r := runTool(runCtx, bin, args, stdout, background, lower)
	if !r.started && runCtx.Err() == nil {
		return result{}, fmt.Errorf("media: start %s: %w", tool, r.err)
	}
	if r.err == nil {
		return result{stdout: stdout.buf.Bytes(), stderr: r.stderr}, nil
	}
	if ctx.Err() != nil {
		return result{}, ctx.Err()
	}
	re := &runError{tool: tool, kind: exited, status: r.err.Error(), stderr: r.stderr}
	switch {
	case stdout.full:
		re.kind = overflowed
	case runCtx.Err() != nil:
		re.kind, re.after = timedOut, wall
	case background && cpuBounded && ranOutOfCPU(r.state, cpu):
		re.kind, re.after = outOfCPU, cpu
	}
	return result{}, re
}

// toolFailure turns a failed run into the error Probe or Poster returns:
// sentinel wrapped with a reason, in a *ToolError carrying the tool's
// diagnostics. Errors that are not the file's fault (the caller's context
// ended, the tool would not start) pass through unchanged.
func toolFailure(sentinel, err error, reason string) error {
	var re *runError
	if !errors.As(err, &re) {
		return err
	}
	te := &ToolError{Tool: re.tool, Status: re.status, Stderr: re.stderr}
	switch re.kind {
	case timedOut:
		te.err = fmt.Errorf("%w: %s did not finish within %v (%w)", sentinel, re.tool, re.after, context.DeadlineExceeded)
	case outOfCPU:
		te.err = fmt.Errorf("%w: %s used %v of CPU time without finishing (%w)", sentinel, re.tool, re.after, context.DeadlineExceeded)
	case overflowed:
		te.err = fmt.Errorf("%w: %s printed too much", sentinel, re.tool)
	default:
		te.err = fmt.Errorf("%w: %s", sentinel, reason)
	}
	return te
}
