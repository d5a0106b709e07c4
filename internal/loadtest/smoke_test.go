package loadtest_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/app/apptest"
	"github.com/reel-video/reel/internal/loadtest"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

// startReel runs an all-in-one reel on a fresh data dir (SQLite unless env
// names a database) over a real socket, with the limits opened up as scripts/bench.sh does, and returns
// its base URL and its routes.
func startReel(t *testing.T, env map[string]string) (string, []string) {
	t.Helper()
	vars := map[string]string{
		"REEL_LOG_LEVEL":          "error",
		"REEL_STORAGE_QUOTA":      "-1",
		"REEL_DAILY_UPLOAD_LIMIT": "-1",
		"REEL_DAILY_EGRESS_LIMIT": "-1",
		"REEL_LOGIN_MAX_PER_IP":   "1000000",
	}
	for k, v := range env {
		vars[k] = v
	}
	a := apptest.New(t, vars, obs.Discard())
	base, _ := apptest.Start(t, a)
	// The web app's pages are served beside the API but kept out of its
	// route list (and OpenAPI document): these are the ones the tool uses.
	pages := []string{"POST /login", "GET /{$}", "GET /watch/{id}", "GET /mine", "GET /auth/refresh"}
	return base, append(a.Routes(), pages...)
}

// served reports whether method and path match one of the server's route
// patterns ("GET /media/{token}/{id}/{file}"). In path, "{id}" stands for
// one segment and "{…}" for the rest.
func served(routes []string, method, path string) bool {
	want := strings.Split(strings.Trim(path, "/"), "/")
	for _, r := range routes {
		m, p, ok := strings.Cut(r, " ")
		if !ok || m != method {
			continue
		}
		have := strings.Split(strings.Trim(p, "/"), "/")
		if match(have, want) {
			return true
		}
	}
	return false
}

func match(pattern, path []string) bool {
	for i, seg := range pattern {
		if strings.HasSuffix(seg, "...}") {
			return len(path) > i
		}
		if i >= len(path) {
			return false
		}
		if path[i] == "{…}" { // the tool's "any rest of the path"
			return true
		}
		wild := strings.HasPrefix(seg, "{") || strings.HasPrefix(path[i], "{")
		if !wild && seg != path[i] {
			return false
		}
	}
	return len(pattern) == len(path)
}

// Six users for two seconds against a real reel: the tool runs, counts
// every route and writes its reports. Routes the server serves must show
// no error; routes it does not serve yet (services still being built)
// must show 404s and a note, not crash the tool.
func TestSmokeAgainstReel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and hashes passwords")
	}
	// On both engines, as scripts/bench.sh runs it.
	sqldbtest.Engines(t, smokeAgainstReel)
}

func smokeAgainstReel(t *testing.T, dbURL string) {
	const adminEmail, adminPassword = "admin@example.com", "admin-password-1"
	base, routes := startReel(t, map[string]string{
		"REEL_ADMIN_EMAIL": adminEmail, "REEL_ADMIN_PASSWORD": adminPassword, "REEL_DATABASE_URL": dbURL,
	})

	video, err := loadtest.MakeVideo(t.Context(), t.TempDir())
	if errors.Is(err, loadtest.ErrNoFFmpeg) {
		t.Log("FFMPEG NOT INSTALLED: the smoke run skips uploads")
	} else if err != nil {
		t.Fatal(err)
	}
	// Two groups of users at once: readers, whose many quick actions are
	// sure to reach every read route, and writers, whose uploads take
	// about a second each (probing, poster) and would otherwise crowd
	// the reads out of a two-second run.
	run := func(weights string, users int, dur time.Duration, out **loadtest.Results, errc chan<- error) {
		w, err := loadtest.ParseWeights(weights)
		if err != nil {
			errc <- err
			return
		}
		*out, err = loadtest.Run(t.Context(), loadtest.Config{
			BaseURL: base, Users: users, Duration: dur, Think: 10 * time.Millisecond, Weights: w,
			Timeout: 20 * time.Second, AdminEmail: adminEmail, AdminPassword: adminPassword, Video: video,
		})
		errc <- err
	}
	var readers, writers *loadtest.Results
	errc := make(chan error, 2)
	go run("feed=3,storage=2,usage=2,logs=2,admin_logs=1,page_feed=2,page_mine=1", 3, 1500*time.Millisecond, &readers, errc)
	writeMix := "upload=1,play=4,delete=2,feed=1,page_watch=2"
	if video == nil {
		writeMix = "play=4,delete=2,feed=1,page_watch=2"
	}
	go run(writeMix, 3, 2500*time.Millisecond, &writers, errc)
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	must := map[*loadtest.Results][]string{
		readers: {loadtest.RouteFeed, loadtest.RouteStorage, loadtest.RouteUsage, loadtest.RouteLogs, loadtest.RouteAdminLogs,
			loadtest.RoutePageFeed, loadtest.RoutePageMine},
		writers: {loadtest.RouteFeed},
	}
	if video != nil {
		// Playing, watching and deleting follow a finished upload, which
		// a loaded machine may not finish in time: they are checked for
		// errors when they ran, and for coverage by the fake's tests.
		must[writers] = append(must[writers], loadtest.RouteUpload)
	}
	for res, names := range must {
		checkSmoke(t, res, routes, names)
	}
	res := readers
	dir := filepath.Join(t.TempDir(), "report")
	if _, err := loadtest.WriteReport(dir, res); err != nil {
		t.Fatal(err)
	}
	back, err := loadtest.ReadJSON(filepath.Join(dir, loadtest.ResultsFile))
	if err != nil || back.Totals.Requests != res.Totals.Requests || len(back.Routes) != len(res.Routes) {
		t.Fatalf("results.json: %v", err)
	}
	html, err := os.ReadFile(filepath.Join(dir, loadtest.ReportFile))
	if err != nil || !strings.Contains(string(html), "<svg") {
		t.Fatalf("report.html: %v", err)
	}
	for _, res := range []*loadtest.Results{readers, writers} {
		var sum strings.Builder
		_ = loadtest.WriteSummary(&sum, res)
		t.Logf("\n%s", sum.String())
	}
}

// checkSmoke checks one smoke run: every user set up, the run stopped by
// itself, every route in must requested, no error on a served route, and
// only 404s, with a note, on a route the server does not serve yet.
func checkSmoke(t *testing.T, res *loadtest.Results, routes, must []string) {
	t.Helper()
	if res.UsersReady != res.Users || res.StopReason != "duration" || res.LoadS < 1 || res.LoadS > 10 {
		t.Fatalf("ready %d of %d, stopped by %s after %.1f s", res.UsersReady, res.Users, res.StopReason, res.LoadS)
	}
	for _, name := range []string{loadtest.RouteRegister, loadtest.RouteLogin, loadtest.RouteAdminLogin, loadtest.RouteWebLogin} {
		r := res.Route(name)
		if r == nil || r.Requests == 0 || r.Errors != 0 {
			t.Fatalf("%s: %+v", name, r)
		}
	}
	for _, name := range []string{loadtest.RouteRegister, loadtest.RouteWebLogin} {
		if r := res.Route(name); r.Requests != uint64(res.Users) {
			t.Fatalf("%s: %d requests for %d users", name, r.Requests, res.Users)
		}
	}
	for _, name := range must {
		if r := res.Route(name); r == nil || r.Requests == 0 {
			t.Errorf("%s: no requests (weights %s)", name, res.Weights)
		}
	}
	for _, r := range res.Routes {
		switch {
		case served(routes, r.Method, r.Path):
			if r.Errors != 0 {
				t.Errorf("%s (%s %s) is served but had %d errors: %v %v %v", r.Name, r.Method, r.Path, r.Errors, r.Status, r.Transport, r.ErrorSamples)
			}
		default:
			t.Logf("%s (%s %s) is not served yet: %d requests, statuses %v", r.Name, r.Method, r.Path, r.Requests, r.Status)
			if r.Status[404] != r.Requests {
				t.Errorf("%s is not served, yet answered %v %v", r.Name, r.Status, r.Transport)
			}
			if !strings.Contains(strings.Join(res.Notes, "\n"), "route "+r.Name+" ") {
				t.Errorf("no note about unserved %s: %q", r.Name, res.Notes)
			}
		}
		if len(r.Series) == 0 || r.Latency.P50 <= 0 || r.Latency.P99 < r.Latency.P50 || r.Latency.Max < r.Latency.P99 {
			t.Errorf("%s: latency %+v, %d points", r.Name, r.Latency, len(r.Series))
		}
	}
}
