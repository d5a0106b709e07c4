package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Runner starts ffmpeg and ffprobe. Run runs name with args to the end,
// copying what the tool prints on stdout to stdout (which may be nil: drop
// it). It returns nil when the tool exited zero, ctx's error when ctx
// ended first (the tool, and anything it started, must then be gone by
// the time Run returns), and otherwise an error, a *RunError when the
// tool ran and failed.
//
// ExecRunner is the plain one; the server plugs in a runner that keeps
// the tools at low CPU priority beside the requests it answers.
type Runner interface {
	Run(ctx context.Context, name string, args []string, stdout io.Writer) error
}

// ErrToolFailed is what a *RunError unwraps to: ffmpeg or ffprobe ran and
// failed on the file.
var ErrToolFailed = errors.New("media: ffmpeg failed")

// RunError is a tool that ran and failed. Its Error text names the tool
// and how it ended, never the tool's words, which may quote server paths
// and file contents; Stderr is for logs.
type RunError struct {
	Tool   string // "ffmpeg" or "ffprobe"
	Status string // how it ended, e.g. "exit status 1", "signal: killed"
	Stderr string // the tool's diagnostics, cut to maxStderr
}

func (e *RunError) Error() string { return fmt.Sprintf("media: %s failed (%s)", e.Tool, e.Status) }

// Unwrap makes every RunError an ErrToolFailed.
func (e *RunError) Unwrap() error { return ErrToolFailed }

const (
	// maxStderr bounds what is kept of a tool's diagnostics: the runs ask
	// for errors only, a few lines, but a damaged file can make ffmpeg
	// repeat one for every packet.
	maxStderr = 64 << 10
	// waitDelay is how long Wait waits for the output pipes to close once
	// the tool is gone, in case something outside its process group still
	// holds them.
	waitDelay = 2 * time.Second
)

// ExecRunner runs a tool with os/exec in a process group of its own, and
// kills the whole group when ctx ends: killing only the process exec
// started would leave anything it forked running and holding its pipes.
type ExecRunner struct {
	// Lower, when set, is called with the tool's process id as soon as it
	// has started, the leader of a session of its own (to lower its
	// priority: Background).
	Lower func(pid int)
}

// Run implements Runner.
func (r ExecRunner) Run(ctx context.Context, name string, args []string, stdout io.Writer) error {
	ran := runTool(ctx, name, args, stdout, r.Lower != nil, r.Lower)
	if ran.err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var exit *exec.ExitError
	if !ran.started || !errors.As(ran.err, &exit) {
		return fmt.Errorf("media: run %s: %w", filepath.Base(name), ran.err)
	}
	return &RunError{Tool: filepath.Base(name), Status: exit.String(), Stderr: ran.stderr}
}

// ran is how one run of a tool ended.
type ran struct {
	started bool             // false: the tool could not be started (err says why)
	state   *os.ProcessState // nil unless started
	stderr  string           // the tool's diagnostics, cut to maxStderr
	err     error            // nil when it exited zero
}

// runTool is the one way reel runs ffmpeg and ffprobe (ExecRunner for
// transcodes, Prober for probes and posters): in a process group of its
// own, in a session of its own when session is set, the whole group
// killed when ctx ends (killProcessGroupOnCancel), stdin /dev/null, stdout
// copied to stdout (nil drops it), stderr kept to maxStderr. lower, when
// set, is called with the tool's pid as soon as it has started, to lower
// its priority.
func runTool(ctx context.Context, name string, args []string, stdout io.Writer, session bool, lower func(pid int)) ran {
	stderr := &capWriter{limit: maxStderr}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = waitDelay
	killProcessGroupOnCancel(cmd, session)
	if err := cmd.Start(); err != nil {
		return ran{err: err}
	}
	if lower != nil {
		lower(cmd.Process.Pid)
	}
	err := cmd.Wait()
	return ran{started: true, state: cmd.ProcessState, stderr: stderr.buf.String(), err: err}
}

// capWriter keeps the first limit bytes written to it and drops the rest.
// It never fails a write, which would leave the tool blocked on a full
// pipe; onFull, if set, is called instead when output first overflows.
type capWriter struct {
	buf    bytes.Buffer
	limit  int
	full   bool
	onFull func()
}

func (w *capWriter) Write(b []byte) (int, error) {
	if room := w.limit - w.buf.Len(); len(b) > room {
		w.buf.Write(b[:max(room, 0)])
		if !w.full && w.onFull != nil {
			w.onFull()
		}
		w.full = true
		return len(b), nil
	}
	return w.buf.Write(b)
}
