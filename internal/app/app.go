package app

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/reel-video/reel/internal/config"
	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// App is one reel process: the modules of its target sharing one HTTP
// server, one metrics registry and, per database URL, one database handle
// (on SQLite several services must share one writer connection).
type App struct {
	cfg     *config.Config
	log     *slog.Logger
	modules []*Module
	present map[string]bool

	mux    *http.ServeMux
	routes []string
	spec   *spec
	prom   *prometheus.Registry
	httpm  *httpx.Metrics

	dbs     map[string]*sqldb.DB
	checks  []check
	runners []runner

	// Services built by modules, for the modules that start after them.
	verifier *authn.Verifier
	svc      services

	ready chan struct{}
	addr  net.Addr
}

type check struct {
	name string
	fn   func(context.Context) error
}

type runner struct {
	name string
	fn   func(context.Context) error
}

// New resolves the configured target into modules.
func New(cfg *config.Config, log *slog.Logger) (*App, error) {
	mods, err := Modules().Resolve(cfg.Targets)
	if err != nil {
		return nil, err
	}
	a := &App{
		cfg: cfg, log: log, modules: mods, present: map[string]bool{},
		mux: http.NewServeMux(), spec: newSpec(), prom: prometheus.NewRegistry(),
		dbs: map[string]*sqldb.DB{}, ready: make(chan struct{}),
	}
	for _, m := range mods {
		a.present[m.Name] = true
	}
	a.prom.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.httpm = httpx.NewMetrics(a.prom)
	return a, nil
}

// ModuleNames returns the resolved modules in start order.
func (a *App) ModuleNames() []string {
	out := make([]string, len(a.modules))
	for i, m := range a.modules {
		out[i] = m.Name
	}
	return out
}

// Handle registers a route on the process's mux and remembers its pattern.
func (a *App) Handle(pattern string, h http.Handler) {
	a.routes = append(a.routes, pattern)
	a.mux.Handle(pattern, h)
}

// HandlePage registers a route of the web app: served like any other, but
// not part of the API, so not held to the OpenAPI document.
func (a *App) HandlePage(pattern string, h http.Handler) {
	a.mux.Handle(pattern, h)
}

// Routes returns the registered route patterns, sorted.
func (a *App) Routes() []string {
	out := append([]string(nil), a.routes...)
	sort.Strings(out)
	return out
}

// Background registers a long-running task, stopped in reverse order of
// registration after the HTTP server has drained.
func (a *App) Background(name string, fn func(context.Context) error) {
	a.runners = append(a.runners, runner{name, fn})
}

// Every registers a periodic job. A failed run is logged and retried at the
// next tick; it never stops the process.
func (a *App) Every(name string, interval time.Duration, fn func(context.Context) error) {
	a.Background(name, func(ctx context.Context) error {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				a.log.Error("periodic job failed", "job", name, "err", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
}

// Ready registers a readiness check.
func (a *App) Ready(name string, fn func(context.Context) error) {
	a.checks = append(a.checks, check{name, fn})
}

// dbOptions are the pool sizes of every database a process opens.
func dbOptions(cfg *config.Config) sqldb.Options {
	return sqldb.Options{MaxOpenConns: cfg.DBMaxConns, QueueConns: cfg.DBQueueConns}
}

// Database opens (once per URL) and migrates the database of a service.
func (a *App) Database(ctx context.Context, service string, migrations fs.FS, table string) (*sqldb.DB, error) {
	url := a.cfg.Databases[service]
	db, ok := a.dbs[url]
	if !ok {
		var err error
		db, err = sqldb.Open(ctx, url, dbOptions(a.cfg))
		if err != nil {
			return nil, fmt.Errorf("%s database %s: %w", service, sqldb.Redacted(url), err)
		}
		a.dbs[url] = db
		a.Ready("database:"+service, db.Ping)
		// Pool figures (go_sql_*{db_name=…}): waits for a connection are
		// what a too-small REEL_DB_MAX_CONNS looks like. A database shared
		// by several services is named after the first to open it.
		a.prom.MustRegister(collectors.NewDBStatsCollector(db.W, service))
		if db.R != db.W {
			a.prom.MustRegister(collectors.NewDBStatsCollector(db.R, service+"_read"))
		}
		if db.Q != db.W {
			a.prom.MustRegister(collectors.NewDBStatsCollector(db.Q, service+"_queue"))
		}
	}
	if err := sqldb.Migrate(ctx, db, migrations, table); err != nil {
		return nil, fmt.Errorf("%s database: %w", service, err)
	}
	return db, nil
}

// Addr returns the listening address once the server runs (for tests).
func (a *App) Addr() net.Addr {
	<-a.ready
	return a.addr
}

// Run initialises the modules in order, serves HTTP on ln (or on the
// configured address when ln is nil) until ctx ends, then drains requests
// and stops background tasks in reverse order.
func (a *App) Run(ctx context.Context, ln net.Listener) (err error) {
	defer a.closeDBs()
	// Listen before the modules start, so that a taken port fails at once
	// rather than after the migrations.
	if ln == nil {
		if ln, err = listen(a.cfg.HTTP.Addr, "REEL_HTTP_ADDR", "http-addr"); err != nil {
			return err
		}
	}
	for _, m := range a.modules {
		if m.init == nil {
			continue
		}
		if err := m.init(ctx, a); err != nil {
			ln.Close()
			return fmt.Errorf("start %s: %w", m.Name, err)
		}
	}
	a.operationalRoutes()

	if a.cfg.HTTP.DebugAddr != "" {
		stopDebug, err := a.serveDebug(a.cfg.HTTP.DebugAddr)
		if err != nil {
			ln.Close()
			return err
		}
		defer stopDebug()
	}
	if a.cfg.HTTP.MetricsAddr != "" {
		stopMetrics, err := a.serveMetrics(a.cfg.HTTP.MetricsAddr)
		if err != nil {
			ln.Close()
			return err
		}
		defer stopMetrics()
	}
	a.addr = ln.Addr()
	close(a.ready)

	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	cancels := make([]context.CancelFunc, len(a.runners))
	done := make([]chan struct{}, len(a.runners))
	for i, r := range a.runners {
		rctx, cancel := context.WithCancel(bgCtx)
		cancels[i], done[i] = cancel, make(chan struct{})
		go func() {
			defer close(done[i])
			if err := r.fn(rctx); err != nil && rctx.Err() == nil {
				a.log.Error("background task stopped", "task", r.name, "err", err)
			}
		}()
	}

	quiet := map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}
	h := httpx.Wrap(httpx.CORS(a.cfg.HTTP.CORSOrigins, httpx.Routed(a.mux)), httpx.MiddlewareConfig{Logger: a.log, Metrics: a.httpm, TrustedProxies: a.cfg.HTTP.TrustedProxies, Quiet: quiet,
		BodyRate: httpx.BodyRate{MinBytes: a.cfg.HTTP.BodyMinBytes, Window: a.cfg.HTTP.BodyWindow}})
	a.log.Info("reel is serving", "url", OpenURL(ln.Addr().String(), a.cfg.HTTP.TLSCert != ""), "addr", ln.Addr().String(), "modules", strings.Join(a.ModuleNames(), ","))
	trusted := a.cfg.HTTP.TrustedProxies
	limited := httpx.LimitPerAddress(ln, a.cfg.HTTP.MaxConnsPerIP, func(ip netip.Addr) bool {
		return ip.IsLoopback() || slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(ip) })
	}, a.log)
	serveErr := httpx.Serve(ctx, limited, h, httpx.ServerConfig{
		TLSCert: a.cfg.HTTP.TLSCert, TLSKey: a.cfg.HTTP.TLSKey, ShutdownTimeout: a.cfg.HTTP.ShutdownTimeout,
	}, a.log)

	// Stop background tasks in reverse order: consumers first, so that for
	// example buffered egress counts are flushed while the database is open.
	// Each gets the shutdown timeout and no more: a task that ignores its
	// cancellation is logged and left behind, so that it cannot hold the
	// process open forever.
	for i := len(a.runners) - 1; i >= 0; i-- {
		cancels[i]()
		select {
		case <-done[i]:
		case <-time.After(a.cfg.HTTP.ShutdownTimeout):
			a.log.Error("background task did not stop in time", "task", a.runners[i].name)
		}
	}
	a.log.Info("reel stopped")
	return serveErr
}

func (a *App) closeDBs() {
	for _, db := range a.dbs {
		if err := db.Close(); err != nil {
			a.log.Warn("close database", "err", err)
		}
	}
}

func (a *App) operationalRoutes() {
	a.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		httpx.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	a.Handle("GET /readyz", http.HandlerFunc(a.readyz))
	a.Handle("GET /metrics", a.publicMetrics())
	a.Handle("GET /api/openapi.json", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(a.spec.bytes())
	}))
}

func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	type result struct {
		Name  string `json:"name"`
		OK    bool   `json:"ok"`
		Error string `json:"error,omitempty"`
	}
	results := make([]result, len(a.checks))
	var wg sync.WaitGroup
	for i, c := range a.checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = result{Name: c.name, OK: true}
			if err := c.fn(ctx); err != nil {
				// The reason stays in the log; probes see only which check failed.
				a.log.Warn("readiness check failed", "check", c.name, "err", err)
				results[i] = result{Name: c.name, Error: "unavailable"}
			}
		}()
	}
	wg.Wait()
	status := http.StatusOK
	for _, res := range results {
		if !res.OK {
			status = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "5")
		}
	}
	httpx.JSON(w, status, map[string]any{"ready": status == http.StatusOK, "checks": results})
}

// errNoURL explains a missing base URL in split mode.
func errNoURL(service string) error {
	return fmt.Errorf("the %s service is not in this process: set REEL_%s_URL to its base URL", service, strings.ToUpper(service))
}
