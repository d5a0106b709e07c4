package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/reel-video/reel/internal/loadtest"
	"github.com/reel-video/reel/internal/platform/obs"
)

const loadtestUsage = `Usage: reel loadtest -url http://host:port [flags]

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

// loadtestCmd runs `reel loadtest`. It needs no configuration of its own
// server: it is a client of one.
func loadtestCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
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
