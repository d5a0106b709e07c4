package loadtest

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Hard caps: whatever the flags say, a run stays within them, so that a
// typo cannot turn the tool into an unbounded flood.
const (
	MaxUsers    = 20000
	MaxDuration = time.Hour
	MaxRequests = 100_000_000
	MaxTimeout  = 10 * time.Minute
)

// Action is one thing a virtual user does between two pauses.
type Action string

// The actions of the original test plan, a repeated login for measuring
// login throughput on its own, and the web app's pages, fetched with the
// cookie session of its login form.
const (
	ActFeed      Action = "feed"       // GET /api/v1/videos
	ActStorage   Action = "storage"    // GET /api/v1/storage/me
	ActUsage     Action = "usage"      // GET /api/v1/usage/me
	ActLogs      Action = "logs"       // GET /api/v1/logs/me
	ActUpload    Action = "upload"     // POST /api/v1/videos (multipart)
	ActPlay      Action = "play"       // POST …/playback, then GET /media ranges
	ActDelete    Action = "delete"     // DELETE /api/v1/videos/{id}
	ActAdminLogs Action = "admin_logs" // GET /api/v1/logs as the admin
	ActLogin     Action = "login"      // POST /api/v1/auth/login again
	ActPageFeed  Action = "page_feed"  // GET / (the feed page)
	ActPageWatch Action = "page_watch" // GET /watch/{id}
	ActPageMine  Action = "page_mine"  // GET /mine
)

// Actions lists every action in a stable order.
var Actions = []Action{ActFeed, ActStorage, ActUsage, ActLogs, ActUpload, ActPlay, ActDelete, ActAdminLogs, ActLogin,
	ActPageFeed, ActPageWatch, ActPageMine}

// pageActions are the actions that need the web app's session.
var pageActions = []Action{ActPageFeed, ActPageWatch, ActPageMine}

// Weights gives each action's relative frequency; absent actions never run.
type Weights map[Action]int

// DefaultWeights is the original test plan's mix (mostly reading, now and
// then an upload, a playback and a deletion) with people on the web app's
// pages beside the API's clients.
const DefaultWeights = "feed=10,storage=5,usage=5,logs=3,upload=1,play=3,delete=1,admin_logs=1,page_feed=4,page_watch=2,page_mine=1"

// ParseWeights reads "feed=10,storage=5,…". The list replaces the default
// mix entirely: actions it does not name get weight 0.
func ParseWeights(s string) (Weights, error) {
	w := Weights{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("weights: %q is not action=weight", part)
		}
		a := Action(strings.TrimSpace(name))
		if !slices.Contains(Actions, a) {
			return nil, fmt.Errorf("weights: unknown action %q (known: %s)", a, actionList())
		}
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || n < 0 || n > 1_000_000 {
			return nil, fmt.Errorf("weights: %s=%q: want a whole number from 0 to 1000000", a, val)
		}
		w[a] = n
	}
	if w.total() == 0 {
		return nil, errors.New("weights: at least one action needs a weight above 0")
	}
	return w, nil
}

// String formats w in ParseWeights's syntax, in the order of Actions.
func (w Weights) String() string {
	var parts []string
	for _, a := range Actions {
		if n := w[a]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", a, n))
		}
	}
	return strings.Join(parts, ",")
}

func (w Weights) total() int {
	t := 0
	for _, n := range w {
		t += n
	}
	return t
}

func actionList() string {
	s := make([]string, len(Actions))
	for i, a := range Actions {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// Config describes one run.
type Config struct {
	// BaseURL is the only address the run ever sends requests to: an
	// http or https URL without query, fragment or credentials.
	BaseURL string
	// Users is the number of concurrent virtual users (1..MaxUsers).
	Users int
	// Duration bounds the load phase, after every user has registered and
	// logged in. Zero with Requests set means MaxDuration.
	Duration time.Duration
	// Requests, when above 0, stops the run after that many HTTP requests
	// in total (setup included).
	Requests int64
	// Weights is the action mix; nil means DefaultWeights.
	Weights Weights
	// Ramp spreads the users' arrival: user i starts at i/Users·Ramp.
	// Zero brings them all at once, like the original test.
	Ramp time.Duration
	// Think is the mean pause between two actions of one user; each pause
	// is drawn uniformly from [0.5, 1.5]·Think. Zero runs flat out.
	Think time.Duration
	// Timeout bounds one request (default 60 s: a login queued behind a
	// thousand argon2 hashes legitimately takes many seconds).
	Timeout time.Duration
	// SetupTimeout bounds the setup phase, in which every user registers
	// and logs in (default 5 min).
	SetupTimeout time.Duration
	// AdminEmail and AdminPassword, when set, log in an admin whose token
	// the admin_logs action uses. Without them that action is dropped.
	AdminEmail, AdminPassword string
	// Insecure skips TLS certificate checks (a self-signed test server).
	Insecure bool
	// Video is the file the upload action sends (an MP4); nil drops the
	// upload action.
	Video []byte
	// Bucket is the width of the time series' buckets (default one second,
	// widened for long runs so that a chart has at most maxBuckets points).
	Bucket time.Duration
	// Progress, when above 0, logs a progress line that often.
	Progress time.Duration
	// Log receives progress and notes; nil discards them.
	Log *slog.Logger
}

// maxBuckets keeps a long run's time series (and its charts) small.
const maxBuckets = 900

// withDefaults returns c with defaults filled in and checks it.
func (c Config) withDefaults() (Config, error) {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	base, err := ValidateURL(c.BaseURL)
	if err != nil {
		return c, err
	}
	c.BaseURL = base
	if c.Users < 1 || c.Users > MaxUsers {
		return c, fmt.Errorf("users: %d: want 1 to %d", c.Users, MaxUsers)
	}
	if c.Duration < 0 || c.Duration > MaxDuration {
		return c, fmt.Errorf("duration: %s: want at most %s", c.Duration, MaxDuration)
	}
	if c.Requests < 0 || c.Requests > MaxRequests {
		return c, fmt.Errorf("requests: %d: want 0 to %d", c.Requests, MaxRequests)
	}
	if c.Duration == 0 {
		if c.Requests == 0 {
			return c, errors.New("give a duration, a request count or both: the run must end by itself")
		}
		c.Duration = MaxDuration
	}
	if c.Ramp < 0 || c.Ramp > MaxDuration {
		return c, fmt.Errorf("ramp: %s: want 0 to %s", c.Ramp, MaxDuration)
	}
	if c.Think < 0 || c.Think > time.Minute {
		return c, fmt.Errorf("think: %s: want 0 to 1m", c.Think)
	}
	if c.Timeout == 0 {
		c.Timeout = 60 * time.Second
	}
	if c.Timeout < 0 || c.Timeout > MaxTimeout {
		return c, fmt.Errorf("timeout: %s: want up to %s", c.Timeout, MaxTimeout)
	}
	if c.SetupTimeout == 0 {
		c.SetupTimeout = 5 * time.Minute
	}
	if c.SetupTimeout < 0 || c.SetupTimeout > MaxDuration {
		return c, fmt.Errorf("setup timeout: %s: want up to %s", c.SetupTimeout, MaxDuration)
	}
	if (c.AdminEmail == "") != (c.AdminPassword == "") {
		return c, errors.New("admin email and admin password go together")
	}
	if c.Weights == nil {
		c.Weights, _ = ParseWeights(DefaultWeights)
	}
	for a, n := range c.Weights {
		if !slices.Contains(Actions, a) || n < 0 {
			return c, fmt.Errorf("weights: bad entry %s=%d", a, n)
		}
	}
	if c.Weights.total() == 0 {
		return c, errors.New("weights: at least one action needs a weight above 0")
	}
	if c.Bucket <= 0 {
		// Whole seconds, as few as keep the load phase within maxBuckets.
		per := time.Duration(maxBuckets) * time.Second
		c.Bucket = max(1, (c.Duration+per-1)/per) * time.Second
	}
	return c, nil
}

// ValidateURL checks that raw is an absolute http or https URL with a host
// and nothing a request could not carry (credentials, query, fragment),
// and returns it without a trailing slash.
func ValidateURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("url: required, e.g. http://127.0.0.1:8080")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("url: %q: only http and https targets are allowed", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", fmt.Errorf("url: %q: no host", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("url: %q: give scheme, host, port and optionally a path prefix only", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}
