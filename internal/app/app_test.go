package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/app"
	"github.com/reel-video/reel/internal/app/apptest"
	"github.com/reel-video/reel/internal/config"
	"github.com/reel-video/reel/internal/gateway"
	"github.com/reel-video/reel/internal/platform/obs"
)

func TestRegistryResolvesEveryTarget(t *testing.T) {
	reg := app.Modules()
	targets := reg.Targets()
	for _, want := range []string{"all", "users", "videos", "storage", "usage", "logs", "gateway"} {
		if !contains(targets, want) {
			t.Fatalf("target %q missing from %v", want, targets)
		}
	}
	for _, target := range targets {
		mods, err := reg.Resolve([]string{target})
		if err != nil {
			t.Fatalf("resolve %s: %v", target, err)
		}
		pos := map[string]int{}
		for i, m := range mods {
			pos[m.Name] = i
		}
		if _, ok := pos[target]; !ok {
			t.Fatalf("%s not in its own resolution", target)
		}
		// Every dependency starts before its dependent, and every
		// present "after" module too.
		for _, m := range mods {
			for _, d := range append(append([]string{}, m.Deps...), m.After...) {
				if p, ok := pos[d]; ok && p > pos[m.Name] {
					t.Fatalf("%s: %s starts after its dependant %s", target, d, m.Name)
				}
			}
			for _, d := range m.Deps {
				if _, ok := pos[d]; !ok {
					t.Fatalf("%s: dependency %s of %s not resolved", target, d, m.Name)
				}
			}
		}
	}
	all, _ := reg.Resolve([]string{"all"})
	names := moduleNames(all)
	for _, s := range config.Services {
		if !contains(names, s) {
			t.Fatalf("all lacks %s: %v", s, names)
		}
	}
	if idx(names, "users") > idx(names, "auth") || idx(names, "storage") > idx(names, "videos") {
		t.Fatalf("bad order %v", names)
	}
	// A comma list resolves to the union.
	two, err := reg.Resolve([]string{"users", "logs"})
	if err != nil || !contains(moduleNames(two), "users") || !contains(moduleNames(two), "logs") || contains(moduleNames(two), "videos") {
		t.Fatalf("users,logs: %v %v", moduleNames(two), err)
	}
	for _, bad := range []string{"nope", "server", "auth", ""} {
		if _, err := reg.Resolve([]string{bad}); err == nil {
			t.Fatalf("target %q resolved", bad)
		}
	}
}

func moduleNames(ms []*app.Module) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

func contains(xs []string, x string) bool { return idx(xs, x) >= 0 }

func idx(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

// start runs an all-in-one app on a fresh SQLite data dir and returns its
// base URL and a stop function that waits for Run to return.
func start(t *testing.T, env map[string]string, extra func(a *app.App)) (string, func() error) {
	t.Helper()
	a, _ := newApp(t, env, obs.Discard())
	if extra != nil {
		extra(a)
	}
	return apptest.Start(t, a)
}

func waitAddr(a *app.App) <-chan struct{} {
	c := make(chan struct{})
	go func() { a.Addr(); close(c) }()
	return c
}

// openapiOps fetches a process's OpenAPI document and lists its operations
// as "METHOD /path", sorted.
func openapiOps(t *testing.T, base string) []string {
	t.Helper()
	res, err := http.Get(base + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	var ops []string
	for path, methods := range doc.Paths {
		for method := range methods {
			switch method {
			case "get", "post", "put", "patch", "delete", "head", "options":
				ops = append(ops, strings.ToUpper(method)+" "+path)
			}
		}
	}
	sort.Strings(ops)
	return ops
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	var a0 *app.App
	base, _ := start(t, nil, func(a *app.App) { a0 = a })
	documented := openapiOps(t, base)
	var served []string
	for _, r := range a0.Routes() {
		if strings.Contains(r, " /internal/") {
			continue // internal routes are not public API
		}
		served = append(served, strings.ReplaceAll(r, "...}", "}"))
	}
	sort.Strings(served)
	if strings.Join(documented, "\n") != strings.Join(served, "\n") {
		t.Fatalf("OpenAPI and routes differ\nonly documented: %v\nonly served: %v", diff(documented, served), diff(served, documented))
	}
}

func diff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func TestHealthReadyMetrics(t *testing.T) {
	base, _ := start(t, nil, nil)
	for path, want := range map[string]string{"/healthz": `"ok"`, "/readyz": `"ready":true`, "/metrics": "reel_http_requests_total"} {
		// Twice, so /metrics has seen a request.
		for i := 0; i < 2; i++ {
			res, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || (i == 1 && !strings.Contains(string(body), want)) {
				t.Fatalf("%s: %d %s", path, res.StatusCode, body)
			}
		}
	}
	// Each database's pools are measured: the writer and, on SQLite, the
	// readers.
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{`go_sql_wait_count_total{db_name="users"}`, `go_sql_in_use_connections{db_name="users_read"}`} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics has no %s", want)
		}
	}
	res, err = http.Get(base + "/no/such/route")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 || res.Header.Get("X-Request-ID") == "" {
		t.Fatalf("unknown route: %d", res.StatusCode)
	}
}

// Stopping drains: a request in flight when the stop begins completes.
func TestGracefulStopDrainsInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	base, stop := start(t, nil, func(a *app.App) {
		a.Handle("GET /test/slow", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			close(entered)
			<-release
			_, _ = io.WriteString(w, "done")
		}))
	})
	got := make(chan string, 1)
	go func() {
		res, err := http.Get(base + "/test/slow")
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got <- string(b)
	}()
	<-entered
	stopErr := make(chan error, 1)
	go func() { stopErr <- stop() }()
	time.Sleep(100 * time.Millisecond) // the server is now draining
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("new connections accepted while draining")
	}
	close(release)
	if b := <-got; b != "done" {
		t.Fatalf("in-flight request: %s", b)
	}
	if err := <-stopErr; err != nil {
		t.Fatalf("stop: %v", err)
	}
}

func TestSplitTargetNeedsPeerURL(t *testing.T) {
	vars := map[string]string{"REEL_DATA_DIR": t.TempDir(), "REEL_TARGET": "videos"}
	cfg, _, err := config.Load("serve", nil, func(k string) string { return vars[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(cfg, obs.Discard())
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	err = a.Run(context.Background(), ln)
	if err == nil || !strings.Contains(err.Error(), "REEL_USERS_URL") {
		t.Fatalf("want a clear error naming REEL_USERS_URL, got %v", err)
	}
}

// The gateway is the public address in split mode: its document lists the
// same public operations as the all-in-one process, and it forwards every
// one of them to a service.
func TestGatewayDocumentsAndRoutesEveryPublicPath(t *testing.T) {
	all, _ := start(t, nil, nil)
	want := openapiOps(t, all)
	env := map[string]string{"REEL_TARGET": "gateway", "REEL_SERVICE_KEY": "a service key of at least 32 characters"}
	for _, svc := range gateway.Services() {
		env["REEL_"+strings.ToUpper(svc)+"_URL"] = "http://127.0.0.1:9"
	}
	gw, _ := start(t, env, nil)
	got := openapiOps(t, gw)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("gateway and all-in-one documents differ\nonly all: %v\nonly gateway: %v", diff(want, got), diff(got, want))
	}
	mux := http.NewServeMux()
	for _, r := range gateway.Routes {
		mux.Handle(r.Pattern, http.NotFoundHandler())
	}
	for _, op := range want {
		method, path, _ := strings.Cut(op, " ")
		switch path {
		case "/healthz", "/readyz", "/metrics", "/api/openapi.json":
			continue // every process answers these itself
		}
		concrete := strings.NewReplacer("{", "x", "}", "").Replace(path)
		req := httptest.NewRequest(method, concrete, nil)
		if _, pattern := mux.Handler(req); pattern == "" {
			t.Errorf("gateway routes no service for %s %s", method, path)
		}
	}
}

// REEL_DEBUG_ADDR serves pprof on its own listener, not on the public one.
func TestDebugAddrServesPprof(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	debug := ln.Addr().String()
	ln.Close()
	base, _ := start(t, map[string]string{"REEL_DEBUG_ADDR": debug}, nil)
	res, err := http.Get("http://" + debug + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Fatalf("debug address: %d %.80s", res.StatusCode, body)
	}
	res, err = http.Get(base + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("pprof on the public address: %d", res.StatusCode)
	}
}

// REEL_METRICS_ADDR serves /metrics on a listener of its own.
func TestMetricsOnPrivateAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	start(t, map[string]string{"REEL_METRICS_ADDR": addr}, nil)
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "go_goroutines") {
		t.Fatalf("private metrics: %d %.200s", res.StatusCode, body)
	}
}

// The transcode target works the videos service's jobs on its database
// without serving its API: health and metrics (with the job queue's
// figures) answer, the videos routes do not, and the periodic maintenance
// has run. It needs the storage and logs services' URLs in split mode,
// and refuses to start with no workers.
func TestTranscodeTarget(t *testing.T) {
	env := map[string]string{
		"REEL_TARGET": "transcode", "REEL_STORAGE_URL": "http://127.0.0.1:9", "REEL_LOGS_URL": "http://127.0.0.1:9",
		"REEL_SERVICE_KEY": strings.Repeat("k", 32),
	}
	base, _ := start(t, env, nil)
	res, err := http.Get(base + "/api/v1/videos")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("the videos API on the transcode target: %d", res.StatusCode)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(body), `reel_jobs{kind="videos_maintenance",state="completed"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no maintenance job completed: %s", grepLines(string(body), "reel_jobs"))
		}
		time.Sleep(100 * time.Millisecond)
	}

	env["REEL_TRANSCODE_WORKERS"] = "0"
	a, _ := newApp(t, env, obs.Discard())
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	if err := a.Run(context.Background(), ln); err == nil || !strings.Contains(err.Error(), "REEL_TRANSCODE_WORKERS=0") {
		t.Fatalf("transcode target without workers: %v", err)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
