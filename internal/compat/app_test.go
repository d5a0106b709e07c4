package compat_test

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/app/apptest"
	"github.com/reel-video/reel/internal/media/mediatest"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

// Admin account of the all-in-one tests.
const (
	adminEmail    = "root@example.com"
	adminPassword = "root-password-1"
)

// startApp runs an all-in-one reel process on dbURL, as `reel serve` does,
// with CORS for origin and a service key, and returns its base URL. env
// overrides settings (REEL_TARGET for one service alone).
func startApp(t *testing.T, dbURL string, env map[string]string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	return startAppOn(t, ln, dbURL, env)
}

// startAppOn is startApp on a given listener, for processes that must know
// each other's address before they start.
func startAppOn(t *testing.T, ln net.Listener, dbURL string, env map[string]string) string {
	t.Helper()
	vars := map[string]string{
		"REEL_DATABASE_URL": dbURL,
		"REEL_CORS_ORIGINS": origin, "REEL_SERVICE_KEY": serviceKey,
		"REEL_ADMIN_EMAIL": adminEmail, "REEL_ADMIN_PASSWORD": adminPassword,
	}
	for k, v := range env {
		vars[k] = v
	}
	base, stop := apptest.StartOn(t, apptest.New(t, vars, obs.Discard()), ln)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("app stopped with %v", err)
		}
	})
	return base
}

// appEngines runs fn against an all-in-one process on each engine.
func appEngines(t *testing.T, fn func(t *testing.T, base string)) {
	t.Helper()
	sqldbtest.Engines(t, func(t *testing.T, url string) {
		fn(t, startApp(t, url, nil))
	})
}

// compatRoutes are the routes of the compatibility surface that the
// running process serves, with a concrete path each.
var compatRoutes = []struct{ method, path string }{
	{"POST", "/api/users/register"},
	{"POST", "/api/users/login"},
	{"GET", "/api/users/user/0191e7a4-0000-7000-8000-000000000000"},
	{"GET", "/api/logs/all?start=0"},
	{"GET", "/api/logs/user/0191e7a4-0000-7000-8000-000000000000"},
	{"POST", "/api/logs/add"},
	{"GET", "/api/storage/usage"},
	{"GET", "/api/usage/daily-usage"},
	{"POST", "/api/videos/upload"},
	{"GET", "/api/videos/stream?start=16"},
	{"GET", "/api/videos/user/0191e7a4-0000-7000-8000-000000000000?start=0"},
	{"GET", "/api/videos/stream/0191e7a4-0000-7000-8000-000000000000"},
	{"DELETE", "/api/videos/delete/0191e7a4-0000-7000-8000-000000000000"},
	{"DELETE", "/api/videos/delete-all"},
}

// The original web client calls reel from another origin: preflights from
// the configured origin are answered for every compatibility route, with
// credentials and the Authorization header; other origins are refused.
func TestCORSOnCompatRoutes(t *testing.T) {
	appEngines(t, func(t *testing.T, base string) {
		for _, rt := range compatRoutes {
			r := call(t, base, req{method: "OPTIONS", path: rt.path, header: map[string]string{
				"Origin": origin, "Access-Control-Request-Method": rt.method, "Access-Control-Request-Headers": "authorization,content-type",
			}})
			h := r.header
			if r.status != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != origin || h.Get("Access-Control-Allow-Credentials") != "true" ||
				!strings.Contains(h.Get("Access-Control-Allow-Methods"), rt.method) || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
				t.Fatalf("preflight %s %s from the allowed origin: %d %v", rt.method, rt.path, r.status, h)
			}
			r = call(t, base, req{method: "OPTIONS", path: rt.path, header: map[string]string{
				"Origin": "https://evil.example.com", "Access-Control-Request-Method": rt.method, "Access-Control-Request-Headers": "authorization",
			}})
			if r.status != http.StatusForbidden || r.header.Get("Access-Control-Allow-Origin") != "" {
				t.Fatalf("preflight %s %s from a refused origin: %d %v", rt.method, rt.path, r.status, r.header)
			}
		}
		// The actual request from the allowed origin carries the CORS
		// answer too, errors included (the browser must let the client
		// read the message).
		r := call(t, base, req{method: "POST", path: "/api/users/login", body: map[string]string{"email": "x@example.com", "password": "nope-nope"}, header: map[string]string{"Origin": origin}})
		expect(t, "login from the browser", r, 400, msg("Invalid credentials"))
		if r.header.Get("Access-Control-Allow-Origin") != origin || r.header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Fatalf("CORS headers on the answer: %v", r.header)
		}
		r = call(t, base, req{method: "GET", path: "/api/logs/all", header: map[string]string{"Origin": "https://evil.example.com"}})
		if r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("refused origin got CORS headers: %v", r.header)
		}
	})
}

// The all-in-one process serves the users and logs parts: the original
// client's walk through them works end to end.
func TestAllInOneUsersAndLogs(t *testing.T) {
	appEngines(t, func(t *testing.T, base string) {
		r := call(t, base, req{method: "POST", path: "/api/users/register", body: map[string]string{"email": "cy@example.com", "password": "password-123", "username": "cy"}})
		expect(t, "register", r, 200, msg("User registered successfully"))
		r = call(t, base, req{method: "POST", path: "/api/users/login", body: map[string]string{"email": "cy@example.com", "password": "password-123"}})
		expect(t, "login", r, 200, nil)
		tok := r.json(t)["token"].(string)
		id := claims(t, tok)["id"].(string)
		expect(t, "v1 me", call(t, base, req{method: "GET", path: "/api/v1/users/me", token: tok}), 200, nil)
		r = call(t, base, req{method: "GET", path: "/api/users/user/" + id, token: tok})
		expect(t, "user", r, 200, nil)

		// The original client's logs page: the user's own log holds the
		// register and login lines once the outbox has delivered them.
		eventually(t, "register and login lines", func() bool {
			rows, _ := logRows(t, call(t, base, req{method: "GET", path: "/api/logs/user/" + id, token: tok}))
			n := 0
			for _, row := range rows {
				if row["service_name"] == "UserAccountService" && (row["action_type"] == "REGISTER" || row["action_type"] == "LOGIN") {
					n++
				}
			}
			return n == 2
		})
		expect(t, "all by a user", call(t, base, req{method: "GET", path: "/api/logs/all", token: tok}), 403, msg("Access denied. Admin role required."))
		r = call(t, base, req{method: "POST", path: "/api/users/login", body: map[string]string{"email": adminEmail, "password": adminPassword}})
		admin := r.json(t)["token"].(string)
		expect(t, "all by admin", call(t, base, req{method: "GET", path: "/api/logs/all", token: admin}), 200, nil)

		// Scripts holding the service key add lines; nobody else can.
		line := map[string]any{"user_id": id, "action": "CUSTOM", "description": "from a script", "service": "VideoFetchService"}
		expect(t, "add", call(t, base, req{method: "POST", path: "/api/logs/add", body: line, token: serviceToken(t, "scripts")}), 201, msg("Log added successfully"))
		expect(t, "add with a user token", call(t, base, req{method: "POST", path: "/api/logs/add", body: line, token: tok}), 401, msg("A service credential is required"))

		// The dashboard's two gauges, with the configured defaults.
		expect(t, "storage", call(t, base, req{method: "GET", path: "/api/storage/usage", token: tok}), 200,
			map[string]any{"totalSizeMb": 0.0, "maxStorageMb": 50.0, "usagePercentage": "0.00"})
		expect(t, "daily usage", call(t, base, req{method: "GET", path: "/api/usage/daily-usage", token: tok}), 200,
			map[string]any{"totalUsageMb": 0.0, "dailyLimitMb": 100.0, "isThresholdExceeded": false, "message": "Bandwidth usage is within the daily limit."})
		// Their checks are in the user's log under the original's names.
		eventually(t, "storage and usage lines", func() bool {
			rows, _ := logRows(t, call(t, base, req{method: "GET", path: "/api/logs/user/" + id, token: tok}))
			found := map[string]bool{}
			for _, row := range rows {
				found[row["action_type"].(string)+" "+row["service_name"].(string)] = true
			}
			return found["CHECK_STORAGE StorageManagementService"] && found["CHECK_BANDWIDTH UsageMonitoringService"]
		})
	})
}

// Without REEL_SERVICE_KEY the add route exists but admits nobody.
func TestLogsAddWithoutServiceKey(t *testing.T) {
	base := startApp(t, sqldbtest.SQLiteURL(t), map[string]string{"REEL_SERVICE_KEY": ""})
	line := map[string]any{"action": "A", "description": "d", "service": "s"}
	expect(t, "add", call(t, base, req{method: "POST", path: "/api/logs/add", body: line, token: serviceToken(t, "scripts")}), 401, msg("A service credential is required"))
}

// Each service serves its own part when it runs alone: the users process
// the users routes, the logs process (verifying tokens with the users
// process's published keys) the logs routes, and neither the other's.
func TestSplitProcessesServeTheirOwnPart(t *testing.T) {
	logsLn, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	usersBase := startApp(t, sqldbtest.SQLiteURL(t), map[string]string{"REEL_TARGET": "users", "REEL_LOGS_URL": "http://" + logsLn.Addr().String()})
	logsBase := startAppOn(t, logsLn, sqldbtest.SQLiteURL(t), map[string]string{"REEL_TARGET": "logs", "REEL_USERS_URL": usersBase, "REEL_ADMIN_EMAIL": "", "REEL_ADMIN_PASSWORD": ""})

	r := call(t, usersBase, req{method: "POST", path: "/api/users/login", body: map[string]string{"email": adminEmail, "password": adminPassword}})
	expect(t, "login on the users process", r, 200, nil)
	admin := r.json(t)["token"].(string)
	expect(t, "logs on the logs process", call(t, logsBase, req{method: "GET", path: "/api/logs/all", token: admin}), 200, nil)
	expect(t, "add on the logs process", call(t, logsBase, req{method: "POST", path: "/api/logs/add", token: serviceToken(t, "scripts"),
		body: map[string]any{"action": "A", "description": "d", "service": "UserAccountService"}}), 201, msg("Log added successfully"))

	// The users process's events reach the logs process over HTTP and
	// read as the original's UserAccountService.
	adminID := claims(t, admin)["id"].(string)
	eventually(t, "the admin's login line on the logs process", func() bool {
		rows, _ := logRows(t, call(t, logsBase, req{method: "GET", path: "/api/logs/user/" + adminID, token: admin}))
		for _, row := range rows {
			if row["action_type"] == "LOGIN" && row["service_name"] == "UserAccountService" {
				return true
			}
		}
		return false
	})

	// The storage and usage processes serve theirs, verifying the users
	// process's tokens and sending their events to the logs process.
	split := map[string]string{"REEL_USERS_URL": usersBase, "REEL_LOGS_URL": logsBase, "REEL_ADMIN_EMAIL": "", "REEL_ADMIN_PASSWORD": "", "REEL_CORS_ORIGINS": ""}
	with := func(target string) map[string]string {
		m := map[string]string{"REEL_TARGET": target}
		for k, v := range split {
			m[k] = v
		}
		return m
	}
	storageBase := startApp(t, sqldbtest.SQLiteURL(t), with("storage"))
	usageBase := startApp(t, sqldbtest.SQLiteURL(t), with("usage"))
	expect(t, "storage on the storage process", call(t, storageBase, req{method: "GET", path: "/api/storage/usage", token: admin}), 200, nil)
	expect(t, "daily usage on the usage process", call(t, usageBase, req{method: "GET", path: "/api/usage/daily-usage", token: admin}), 200, nil)
	if r := call(t, storageBase, req{method: "GET", path: "/api/usage/daily-usage", token: admin}); r.status != 404 {
		t.Fatalf("the storage process answers the usage part: %d", r.status)
	}
	eventually(t, "the admin's storage check on the logs process", func() bool {
		rows, _ := logRows(t, call(t, logsBase, req{method: "GET", path: "/api/logs/user/" + adminID, token: admin}))
		for _, row := range rows {
			if row["action_type"] == "CHECK_STORAGE" && row["service_name"] == "StorageManagementService" {
				return true
			}
		}
		return false
	})

	// The videos process serves the videos part, calling the storage and
	// usage processes; behind the gateway (a trusted proxy) its media URLs
	// name the gateway, and the .mp4/.jpg pair plays through it.
	mediatest.Tools(t)
	clip, err := os.ReadFile(mediatest.Video(t, "", 1, 64, 48))
	must(t, err)
	v := with("videos")
	v["REEL_STORAGE_URL"], v["REEL_USAGE_URL"], v["REEL_TRUSTED_PROXIES"] = storageBase, usageBase, "127.0.0.1/32"
	videosBase := startApp(t, sqldbtest.SQLiteURL(t), v)
	// As in deploy/: CORS is the gateway's alone.
	gatewayBase := startApp(t, sqldbtest.SQLiteURL(t), map[string]string{"REEL_TARGET": "gateway", "REEL_ADMIN_EMAIL": "", "REEL_ADMIN_PASSWORD": "",
		"REEL_USERS_URL": usersBase, "REEL_LOGS_URL": logsBase, "REEL_STORAGE_URL": storageBase, "REEL_USAGE_URL": usageBase, "REEL_VIDEOS_URL": videosBase})
	b, ct := multipartBody(t, part{name: "video", filename: "clip.mp4", data: clip}, part{name: "title", data: []byte("Split")})
	r = call(t, gatewayBase, req{method: "POST", path: "/api/videos/upload", token: admin, body: b, header: map[string]string{"Content-Type": ct}})
	expect(t, "upload through the gateway", r, 200, nil)
	vid := r.json(t)["file"].(map[string]any)["id"].(string)
	url := call(t, gatewayBase, req{method: "GET", path: "/api/videos/stream/" + vid, token: admin}).json(t)["url"].(string)
	if !strings.HasPrefix(url, gatewayBase+"/media/") {
		t.Fatalf("media URL %s does not name the gateway %s", url, gatewayBase)
	}
	if status, ctype, body := get(t, url); status != 200 || ctype != "video/mp4" || !bytes.Equal(body, clip) {
		t.Fatalf("video through the gateway: %d %s", status, ctype)
	}
	if status, ctype, _ := getPoster(t, poster(url)); status != 200 || ctype != "image/jpeg" {
		t.Fatalf("poster through the gateway: %d %s", status, ctype)
	}
	if r := call(t, gatewayBase, req{method: "GET", path: "/api/storage/usage", token: admin}); r.status != 200 || r.json(t)["totalSizeMb"].(float64) <= 0 {
		t.Fatalf("storage through the gateway after the upload: %d %s", r.status, r.body)
	}
	for _, rt := range compatRoutes {
		r := call(t, gatewayBase, req{method: "OPTIONS", path: rt.path, header: map[string]string{"Origin": origin, "Access-Control-Request-Method": rt.method, "Access-Control-Request-Headers": "authorization"}})
		if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != origin {
			t.Fatalf("preflight through the gateway %s %s: %d %v", rt.method, rt.path, r.status, r.header)
		}
	}
	r = call(t, gatewayBase, req{method: "GET", path: "/api/videos/stream", token: admin, header: map[string]string{"Origin": origin}})
	if got := r.header.Values("Access-Control-Allow-Origin"); r.status != 200 || len(got) != 1 || got[0] != origin {
		t.Fatalf("feed through the gateway from the browser: %d %v", r.status, got)
	}

	if r := call(t, logsBase, req{method: "POST", path: "/api/users/login", body: map[string]string{"email": adminEmail, "password": adminPassword}}); r.status != 404 {
		t.Fatalf("the logs process answers the users part: %d", r.status)
	}
	if r := call(t, usersBase, req{method: "GET", path: "/api/logs/all", token: admin}); r.status != 404 {
		t.Fatalf("the users process answers the logs part: %d", r.status)
	}
}

// The original web client's whole walk against the all-in-one process:
// log in, upload, see the dashboard (feed, gauges), play the video and see
// its poster through the .mp4/.jpg pair, delete, read the log.
func TestAllInOneVideoWalk(t *testing.T) {
	mediatest.Tools(t)
	clip, err := os.ReadFile(mediatest.Video(t, "", 1, 64, 48))
	must(t, err)
	appEngines(t, func(t *testing.T, base string) {
		expect(t, "register", call(t, base, req{method: "POST", path: "/api/users/register", body: map[string]string{"email": "vi@example.com", "password": "password-123", "username": "vi"}}), 200, nil)
		r := call(t, base, req{method: "POST", path: "/api/users/login", body: map[string]string{"email": "vi@example.com", "password": "password-123"}})
		tok := r.json(t)["token"].(string)
		id := claims(t, tok)["id"].(string)

		b, ct := multipartBody(t, part{name: "video", filename: "clip.mp4", data: clip}, part{name: "title", data: []byte("Walk")})
		r = call(t, base, req{method: "POST", path: "/api/videos/upload", token: tok, body: b, header: map[string]string{"Content-Type": ct, "Origin": origin}})
		expect(t, "upload", r, 200, nil)
		if r.header.Get("Access-Control-Allow-Origin") != origin {
			t.Fatalf("upload answer without CORS: %v", r.header)
		}
		vid := r.json(t)["file"].(map[string]any)["filename"].(string)

		rows, total := videoRows(t, call(t, base, req{method: "GET", path: "/api/videos/stream?start=0", token: tok}))
		if total != 1 || rows[0]["filename"] != vid || rows[0]["user_id"] != id || !strings.HasPrefix(rows[0]["filepath"].(string), base+"/media/") {
			t.Fatalf("feed: total %d, %v", total, rows)
		}
		mine, total := videoRows(t, call(t, base, req{method: "GET", path: "/api/videos/user/" + id, token: tok}))
		if total != 1 || mine[0]["id"] != vid {
			t.Fatalf("own videos: total %d, %v", total, mine)
		}
		for _, fp := range []string{rows[0]["filepath"].(string), call(t, base, req{method: "GET", path: "/api/videos/stream/" + vid, token: tok}).json(t)["url"].(string)} {
			status, ctype, body := get(t, fp)
			if status != 200 || ctype != "video/mp4" || !bytes.Equal(body, clip) {
				t.Fatalf("video %s: %d %s", fp, status, ctype)
			}
			status, ctype, body = getPoster(t, poster(fp))
			if status != 200 || ctype != "image/jpeg" || len(body) < 3 || body[0] != 0xff || body[1] != 0xd8 {
				t.Fatalf("poster %s: %d %s", poster(fp), status, ctype)
			}
		}
		// The poster job's metrics: one cut, its job completed (River
		// records that just after the job returns).
		deadline := time.Now().Add(10 * time.Second)
		for _, want := range []string{`reel_jobs{kind="poster",state="completed"} 1` + "\n", `reel_video_posters_total{outcome="cut"} 1` + "\n", `reel_video_posters_total{outcome="failed"} 0` + "\n", "reel_video_poster_sources_skipped_total 0\n"} {
			for {
				_, _, metrics := get(t, base+"/metrics")
				if strings.Contains(string(metrics), want) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("/metrics has no %q", want)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		// The same video through the v1 API, with the compat token.
		r = call(t, base, req{method: "GET", path: "/api/v1/videos/" + vid, token: tok})
		expect(t, "v1 video", r, 200, nil)

		// Gauges: the upload counts in MiB.
		mb := round2(float64(len(clip)) / (1 << 20))
		st := call(t, base, req{method: "GET", path: "/api/storage/usage", token: tok}).json(t)
		if st["totalSizeMb"].(float64) < mb || st["maxStorageMb"] != 50.0 {
			t.Fatalf("storage after upload %v", st)
		}
		du := call(t, base, req{method: "GET", path: "/api/usage/daily-usage", token: tok}).json(t)
		if du["totalUsageMb"] != mb || du["isThresholdExceeded"] != false {
			t.Fatalf("daily usage after upload %v (want %v MiB)", du, mb)
		}

		expect(t, "delete", call(t, base, req{method: "DELETE", path: "/api/videos/delete/" + vid, token: tok}), 200, msg("Video deleted successfully (soft delete)"))
		expect(t, "delete-all", call(t, base, req{method: "DELETE", path: "/api/videos/delete-all", token: tok}), 200, msg("All videos deleted successfully (soft delete)"))
		if _, total := videoRows(t, call(t, base, req{method: "GET", path: "/api/videos/stream", token: tok})); total != 0 {
			t.Fatalf("feed after delete: %d", total)
		}
		if st := call(t, base, req{method: "GET", path: "/api/storage/usage", token: tok}).json(t); st["totalSizeMb"] != 0.0 {
			t.Fatalf("storage after delete %v", st)
		}

		// The log tells the story under the original's service names.
		eventually(t, "the video lines", func() bool {
			rows, _ := logRows(t, call(t, base, req{method: "GET", path: "/api/logs/user/" + id, token: tok}))
			found := map[string]bool{}
			for _, row := range rows {
				found[row["action_type"].(string)+" "+row["service_name"].(string)] = true
			}
			return found["UPLOAD_VIDEO VideoUploadService"] && found["FETCH_VIDEOS VideoFetchService"] &&
				found["STREAM_VIDEO VideoStreamService"] && found["DELETE_VIDEO VideoDeleteService"] && found["DELETE_ALL_VIDEOS VideoDeleteService"]
		})
		// Only the stream route is a playback: the listings' signed
		// filepaths record nothing.
		rows, _ = logRows(t, call(t, base, req{method: "GET", path: "/api/logs/user/" + id, token: tok}))
		streams := 0
		for _, row := range rows {
			if row["action_type"] == "STREAM_VIDEO" {
				streams++
			}
		}
		if streams != 1 {
			t.Fatalf("STREAM_VIDEO %d times, want once (the stream route)", streams)
		}
	})
}
