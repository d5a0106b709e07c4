package app

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// serveDebug serves Go's pprof profiles on their own listener, so that
// profiling a running process (docs/benchmarks.md) needs no rebuild and
// the profiles never share the public address or its middleware. It is
// off unless REEL_DEBUG_ADDR is set: profiles show memory contents and
// cost CPU, so the address must stay private. The returned function stops
// it.
func (a *App) serveDebug(addr string) (func(), error) {
	ln, err := listen(addr, "REEL_DEBUG_ADDR", "debug-addr")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	// A CPU profile or trace runs for its ?seconds=, so no write timeout.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	a.log.Warn("serving pprof profiles; keep this address private", "addr", ln.Addr().String())
	return a.serveAside(srv, ln, "debug"), nil
}

// serveAside serves srv on ln beside the public server, for a private
// listener (profiles, metrics); the returned function stops it.
func (a *App) serveAside(srv *http.Server, ln net.Listener, name string) func() {
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error(name+" server stopped", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close()
	}
}
