package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/reel-video/reel/internal/loadtest"
	"github.com/reel-video/reel/internal/platform/obs"
)

const loadtestUsage = `Usage: reel loadtest [mix] -url http://host:port [flags]
       reel loadtest viewers -url http://host:port (-video-id ID | -master PATH) [flags]
       reel loadtest firstrendition -url http://host:port -video FILE [flags]

"reel loadtest viewers -h" and "reel loadtest firstrendition -h" describe
those scenarios. The mix, the default:

Drives a running reel with concurrent virtual users doing the original
system's test plan: each registers, logs in, then reads the feed, its
storage, its daily usage and its activity log, uploads a small video,
plays a video by byte ranges and deletes one; an admin reads every log.
The same users also sign in on the web app's login form and open its
pages (the feed, a watch page, their videos) with that cookie session.
It stops by itself at the end of -duration (after setup) or -requests.
It writes results.json, report.html and SVG charts into -out and prints
a summary. Requests only ever go to -url.

Flags:
`

// loadtestCmd runs `reel loadtest [scenario]`. It needs no configuration
// of its own server: it is a client of one.
func loadtestCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	scenario := "mix"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		scenario, args = args[0], args[1:]
	}
	switch scenario {
	case "mix":
		return mixCmd(ctx, args, getenv, stdout, stderr)
	case "viewers":
		return viewersCmd(ctx, args, getenv, stdout, stderr)
	case "firstrendition":
		return firstRenditionCmd(ctx, args, getenv, stdout, stderr)
	}
	return fmt.Errorf("loadtest: unknown scenario %q (mix, viewers, firstrendition)", scenario)
}

// mixCmd runs the mix: the original system's test plan and the web app.
func mixCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, loadtestUsage)
		fs.PrintDefaults()
	}
	var (
		cfg       loadtest.Config
		weights   string
		out       string
		videoPath string
		progress  time.Duration
	)
	fs.StringVar(&cfg.BaseURL, "url", "", "base URL of the reel to test (http or https; the only address the tool talks to)")
	fs.IntVar(&cfg.Users, "users", 100, fmt.Sprintf("concurrent virtual users (at most %d)", loadtest.MaxUsers))
	fs.DurationVar(&cfg.Duration, "duration", time.Minute, fmt.Sprintf("length of the load phase after setup (at most %s; 0 with -requests: up to the cap)", loadtest.MaxDuration))
	fs.Int64Var(&cfg.Requests, "requests", 0, "stop after this many requests in total, setup included (0: no count)")
	fs.StringVar(&weights, "weights", loadtest.DefaultWeights, "action mix; actions left out never run (feed, storage, usage, logs, upload, play, delete, admin_logs, login, page_feed, page_watch, page_mine)")
	fs.DurationVar(&cfg.Think, "think", time.Second, "mean pause between two actions of a user (uniform 0.5–1.5×; 0: flat out)")
	fs.DurationVar(&cfg.Ramp, "ramp", 0, "spread the users' arrival over this long (0: all at once)")
	fs.DurationVar(&cfg.Timeout, "timeout", 2*time.Minute, "per-request timeout (a login queued behind many password hashes takes long)")
	fs.DurationVar(&cfg.SetupTimeout, "setup-timeout", 5*time.Minute, "how long registering and logging in every user may take")
	fs.StringVar(&cfg.AdminEmail, "admin-email", "", "admin account for the admin_logs action")
	fs.StringVar(&cfg.AdminPassword, "admin-password", getenv("REEL_LOADTEST_ADMIN_PASSWORD"), "its password ($REEL_LOADTEST_ADMIN_PASSWORD)")
	fs.StringVar(&videoPath, "video", "", "upload this file instead of a generated one (default: a ~300 KiB MP4 made with ffmpeg)")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "accept any TLS certificate (a self-signed test server)")
	fs.StringVar(&out, "out", "loadtest-results", "directory for results.json, report.html and the charts")
	fs.DurationVar(&progress, "progress", 5*time.Second, "log a progress line this often (0: never)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("loadtest: unexpected argument %q", fs.Arg(0))
	}
	// Check the cheap things before generating a video.
	if _, err := loadtest.ValidateURL(cfg.BaseURL); err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	w, err := loadtest.ParseWeights(weights)
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	cfg.Weights = w
	cfg.Progress = progress
	cfg.Log = obs.NewLogger(stderr, "info", "text")
	if cfg.AdminEmail == "" {
		cfg.AdminPassword = "" // a password from the environment alone means nothing
	}

	if w[loadtest.ActUpload] > 0 {
		if cfg.Video, err = uploadPayload(ctx, videoPath); errors.Is(err, loadtest.ErrNoFFmpeg) {
			fmt.Fprintln(stderr, "reel loadtest:", err)
		} else if err != nil {
			return fmt.Errorf("loadtest: %w", err)
		}
	}

	res, err := loadtest.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	// Write the reports even when interrupted: a partial run is still
	// worth looking at.
	if _, err := loadtest.WriteReport(out, res); err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	if err := loadtest.WriteSummary(stdout, res); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "report: %s\nresults: %s\n", filepath.Join(out, loadtest.ReportFile), filepath.Join(out, loadtest.ResultsFile))
	return nil
}

// uploadPayload reads path, or generates a video with ffmpeg when path is
// empty.
func uploadPayload(ctx context.Context, path string) ([]byte, error) {
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("video: %w", err)
		}
		return b, nil
	}
	dir, err := os.MkdirTemp("", "reel-loadtest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	return loadtest.MakeVideo(ctx, dir)
}

const viewersUsage = `Usage: reel loadtest viewers -url http://host:port (-video-id ID | -master PATH) [flags]

N viewers each play an HLS stream at real-time pace, each over its own
connection: a playback grant (with -video-id, through reel's API, with
-accounts accounts registered for it), the master playlist, the rung's
media playlist and init section, then one segment (a byte range) per
segment duration, starting over at the end. N starts at -start and grows
by -step every -step-duration up to -max, until a step has an error or a
p99 segment time to first byte over -target-p99. With -master the same
files are played from a plain file server (nginx), without accounts.
It writes viewers.json and viewers.svg into -out and prints a summary.
Requests only ever go to -url.

Flags:
`

// viewersCmd runs `reel loadtest viewers`.
func viewersCmd(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadtest viewers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, viewersUsage)
		fs.PrintDefaults()
	}
	var (
		cfg  loadtest.ViewersConfig
		pids string
		out  string
	)
	fs.StringVar(&cfg.BaseURL, "url", "", "base URL of the server to test (the only address the tool talks to)")
	fs.StringVar(&cfg.VideoID, "video-id", "", "the video to play through reel's API (a grant per viewer)")
	fs.StringVar(&cfg.Master, "master", "", "instead, the path of a master playlist on a plain file server, played without accounts")
	fs.IntVar(&cfg.Accounts, "accounts", loadtest.DefaultViewerAccounts, "accounts the viewers share (each costs two password hashes to set up)")
	fs.IntVar(&cfg.Short, "rung", loadtest.DefaultViewerShort, "the rung to play, by its short side in pixels")
	fs.IntVar(&cfg.Start, "start", 100, "viewers in the first step")
	fs.IntVar(&cfg.Step, "step", 100, "viewers added by each next step")
	fs.IntVar(&cfg.Max, "max", 0, fmt.Sprintf("viewers in the last step (at most %d; 0: -start, one step)", loadtest.MaxUsers))
	fs.DurationVar(&cfg.StepDuration, "step-duration", loadtest.DefaultStepDuration, "how long each step lasts")
	fs.DurationVar(&cfg.Interval, "interval", 0, "time between two segment requests of a viewer (0: each segment's duration, real time)")
	fs.DurationVar(&cfg.TargetP99, "target-p99", loadtest.DefaultTargetP99, "a step passes with 0 errors and a p99 segment TTFB below this")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "accept any TLS certificate (a self-signed test server)")
	fs.StringVar(&pids, "server-pid", "", "comma-separated ids of the server's processes on this machine, whose CPU and memory each step reports")
	fs.StringVar(&out, "out", "loadtest-viewers", "directory for viewers.json and viewers.svg")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("loadtest viewers: unexpected argument %q", fs.Arg(0))
	}
	for p := range strings.SplitSeq(pids, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return fmt.Errorf("loadtest viewers: -server-pid: %q is not a process id", p)
		}
		cfg.ServerPIDs = append(cfg.ServerPIDs, n)
	}
	cfg.Log = obs.NewLogger(stderr, "info", "text")
	res, err := loadtest.RunViewers(ctx, cfg)
	if err != nil {
		return fmt.Errorf("loadtest viewers: %w", err)
	}
	if err := loadtest.WriteViewers(out, res); err != nil {
		return fmt.Errorf("loadtest viewers: %w", err)
	}
	if err := loadtest.WriteViewersSummary(stdout, res); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "results: %s\n", filepath.Join(out, loadtest.ViewersFile))
	return nil
}

const firstRenditionUsage = `Usage: reel loadtest firstrendition -url http://host:port -video FILE [flags]

Uploads -video -uploads times, one at a time, and times each from the
upload's answer to the first master playlist (through a playback grant)
that lists a rendition, polling every -poll; each video goes to the trash
once measured, which stops its jobs. With -queued N, another account
first uploads -queue N times (a clip that needs transcoding), so that
the measured uploads wait behind a busy queue; those go to the trash at
the end. With admin credentials and no queue, each upload waits until no
media job runs or waits. It writes first-rendition.json into -out and
prints a summary.

Flags:
`

// firstRenditionCmd runs `reel loadtest firstrendition`.
func firstRenditionCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadtest firstrendition", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, firstRenditionUsage)
		fs.PrintDefaults()
	}
	var (
		cfg          loadtest.FirstRenditionConfig
		video, queue string
		out          string
	)
	fs.StringVar(&cfg.BaseURL, "url", "", "base URL of the reel to test (the only address the tool talks to)")
	fs.StringVar(&video, "video", "", "the clip to measure (an MP4)")
	fs.IntVar(&cfg.Uploads, "uploads", 5, "measured uploads")
	fs.StringVar(&queue, "queue", "", "a clip that needs transcoding, uploaded -queued times before the measured ones")
	fs.IntVar(&cfg.Queued, "queued", 0, "how many times to upload -queue first")
	fs.DurationVar(&cfg.Poll, "poll", 100*time.Millisecond, "time between two looks at a measured video")
	fs.DurationVar(&cfg.Wait, "wait", 5*time.Minute, "longest wait for one video's first rendition")
	fs.StringVar(&cfg.AdminEmail, "admin-email", "", "admin account, to read the job queue")
	fs.StringVar(&cfg.AdminPassword, "admin-password", getenv("REEL_LOADTEST_ADMIN_PASSWORD"), "its password ($REEL_LOADTEST_ADMIN_PASSWORD)")
	fs.DurationVar(&cfg.Timeout, "timeout", 2*time.Minute, "per-request timeout")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "accept any TLS certificate (a self-signed test server)")
	fs.StringVar(&out, "out", "loadtest-first-rendition", "directory for first-rendition.json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("loadtest firstrendition: unexpected argument %q", fs.Arg(0))
	}
	if cfg.AdminEmail == "" {
		cfg.AdminPassword = ""
	}
	var err error
	if video == "" {
		return errors.New("loadtest firstrendition: -video is required")
	}
	if cfg.Video, err = os.ReadFile(video); err != nil {
		return fmt.Errorf("loadtest firstrendition: %w", err)
	}
	if queue != "" {
		if cfg.Queue, err = os.ReadFile(queue); err != nil {
			return fmt.Errorf("loadtest firstrendition: %w", err)
		}
	}
	cfg.Log = obs.NewLogger(stderr, "info", "text")
	res, err := loadtest.RunFirstRendition(ctx, cfg)
	if err != nil {
		return fmt.Errorf("loadtest firstrendition: %w", err)
	}
	if err := loadtest.WriteFirstRendition(out, res); err != nil {
		return fmt.Errorf("loadtest firstrendition: %w", err)
	}
	if err := loadtest.WriteFirstRenditionSummary(stdout, res); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "results: %s\n", filepath.Join(out, loadtest.FirstRenditionFile))
	return nil
}
