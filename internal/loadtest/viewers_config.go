package loadtest

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// ViewersConfig describes a viewers run: N viewers each playing one HLS
// stream at real-time pace (one segment per segment duration), N growing
// by steps until a step misses the target or N reaches Max.
type ViewersConfig struct {
	// BaseURL is the only address the run sends requests to.
	BaseURL string
	// VideoID is the video to watch through reel's API: Accounts
	// accounts register and log in, each viewer asks for a playback
	// grant with one of them and plays its hls_url.
	VideoID string
	// Master is, instead, the path on the target of a master playlist to
	// play without any account: the same files served by another server
	// (nginx) for comparison. Exactly one of VideoID and Master is set.
	Master string
	// Accounts the viewers are spread over (default 20, at most Max):
	// each registration and login costs a password hash.
	Accounts int
	// Short is the short side of the rung to play (default 360): the
	// variant of that size, else the largest below it, else the smallest.
	Short int
	// Start viewers in the first step, Step more in each next one, up to
	// Max (default Start: one step).
	Start, Step, Max int
	// StepDuration is how long each step lasts (default 30 s).
	StepDuration time.Duration
	// Interval, when above 0, replaces each segment's duration as the time
	// between two segment requests of a viewer (a short test).
	Interval time.Duration
	// TargetP99: a step passes with 0 errors and a p99 segment TTFB below
	// it (default 100 ms).
	TargetP99 time.Duration
	// Timeout bounds one request (default 10 s).
	Timeout time.Duration
	// Insecure skips TLS certificate checks.
	Insecure bool
	// ServerPIDs are processes on this machine whose CPU time and
	// resident memory each step reports: the server under test (for
	// nginx, its master and workers).
	ServerPIDs []int
	// Log receives progress and notes; nil discards them.
	Log *slog.Logger
}

// Viewer-run defaults.
const (
	DefaultViewerAccounts = 20
	DefaultViewerShort    = 360
	DefaultStepDuration   = 30 * time.Second
	DefaultTargetP99      = 100 * time.Millisecond
)

func (c ViewersConfig) withDefaults() (ViewersConfig, error) {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	base, err := ValidateURL(c.BaseURL)
	if err != nil {
		return c, err
	}
	c.BaseURL = base
	switch {
	case (c.VideoID == "") == (c.Master == ""):
		return c, errors.New("give either a video id (played through reel's API) or a master playlist path (played as files)")
	case c.VideoID != "" && (len(c.VideoID) > 200 || strings.ContainsAny(c.VideoID, "/?#")):
		return c, fmt.Errorf("video id %q: not an id", c.VideoID)
	case c.Master != "":
		u, err := url.Parse(c.Master)
		if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, "/") || u.Fragment != "" {
			return c, fmt.Errorf("master %q: give a path on the target, such as /hls/master.m3u8", c.Master)
		}
	}
	if c.Start < 1 || c.Start > MaxUsers {
		return c, fmt.Errorf("start: %d viewers: want 1 to %d", c.Start, MaxUsers)
	}
	if c.Max == 0 {
		c.Max = c.Start
	}
	if c.Max < c.Start || c.Max > MaxUsers {
		return c, fmt.Errorf("max: %d viewers: want %d (start) to %d", c.Max, c.Start, MaxUsers)
	}
	if c.Step < 0 || (c.Step == 0 && c.Max > c.Start) {
		return c, fmt.Errorf("step: %d viewers: want more than 0 to go from %d to %d", c.Step, c.Start, c.Max)
	}
	if c.Accounts == 0 {
		c.Accounts = DefaultViewerAccounts
	}
	c.Accounts = min(c.Accounts, c.Max)
	if c.Accounts < 1 {
		return c, fmt.Errorf("accounts: %d: want at least 1", c.Accounts)
	}
	if c.Short == 0 {
		c.Short = DefaultViewerShort
	}
	if c.Short < 1 || c.Short > 10000 {
		return c, fmt.Errorf("rung: %d: want a short side in pixels, such as 360", c.Short)
	}
	if c.StepDuration == 0 {
		c.StepDuration = DefaultStepDuration
	}
	if c.StepDuration < time.Second || c.StepDuration > MaxDuration {
		return c, fmt.Errorf("step duration: %s: want 1s to %s", c.StepDuration, MaxDuration)
	}
	if steps := c.steps(); time.Duration(steps)*c.StepDuration > MaxDuration {
		return c, fmt.Errorf("%d steps of %s: the run must stay within %s", steps, c.StepDuration, MaxDuration)
	}
	if c.Interval < 0 || c.Interval > time.Minute {
		return c, fmt.Errorf("interval: %s: want 0 (the segments' durations) to 1m", c.Interval)
	}
	if c.TargetP99 == 0 {
		c.TargetP99 = DefaultTargetP99
	}
	if c.TargetP99 < 0 || c.TargetP99 > MaxTimeout {
		return c, fmt.Errorf("target p99: %s: want up to %s", c.TargetP99, MaxTimeout)
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Timeout < 0 || c.Timeout > MaxTimeout {
		return c, fmt.Errorf("timeout: %s: want up to %s", c.Timeout, MaxTimeout)
	}
	for _, pid := range c.ServerPIDs {
		if pid <= 0 {
			return c, fmt.Errorf("server pid %d: not a process id", pid)
		}
	}
	return c, nil
}

// steps is the number of steps from Start to Max.
func (c ViewersConfig) steps() int {
	if c.Step == 0 {
		return 1
	}
	return (c.Max-c.Start+c.Step-1)/c.Step + 1
}

// viewersAt is the number of viewers in step k (from 0).
func (c ViewersConfig) viewersAt(k int) int { return min(c.Start+k*c.Step, c.Max) }
