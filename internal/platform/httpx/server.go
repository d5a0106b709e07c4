package httpx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// ServerConfig configures Serve.
type ServerConfig struct {
	TLSCert, TLSKey   string
	ReadHeaderTimeout time.Duration
	// ReadTimeout and WriteTimeout stay zero for media and uploads, which
	// may legitimately last long; IdleTimeout and the header timeout bound
	// slow-loris connections instead.
	IdleTimeout     time.Duration
	ShutdownTimeout time.Duration
	// CloseGrace is how long requests still running when the drain ends
	// get, once their connections are closed, to fail and clean up before
	// Serve returns (default 10s).
	CloseGrace     time.Duration
	MaxHeaderBytes int
}

// Serve serves h on ln until ctx is cancelled, then stops accepting and
// drains in-flight requests for up to ShutdownTimeout.
//
// Requests still running after the drain (an upload whose client sends
// too slowly, a long media stream) have their connections closed, and
// Serve waits up to CloseGrace for their handlers to return: a handler
// reading a body then fails while the process still runs, and can give
// back what it held (an upload's reservations, its spool file) instead of
// being cut off half-way when the process exits.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, cfg ServerConfig, log *slog.Logger) error {
	if cfg.ReadHeaderTimeout == 0 {
		cfg.ReadHeaderTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 120 * time.Second
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.MaxHeaderBytes == 0 {
		cfg.MaxHeaderBytes = 64 << 10
	}
	if cfg.CloseGrace == 0 {
		cfg.CloseGrace = 10 * time.Second
	}
	var active atomic.Int64 // handlers running
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			active.Add(1)
			defer active.Add(-1)
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() {
		var err error
		if cfg.TLSCert != "" {
			err = srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
		} else {
			err = srv.Serve(ln)
		}
		errc <- err
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("http server draining", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		n := active.Load()
		log.Warn("requests still running after the drain; closing their connections", "requests", n, "grace", cfg.CloseGrace)
		_ = srv.Close()
		deadline := time.Now().Add(cfg.CloseGrace)
		for active.Load() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		// Requests whose connections were closed but whose handlers then
		// finished cleaning up are a normal stop (exit 0: the orchestrator
		// asked for it). Only handlers still running are an error: what
		// they were doing is cut off half-way.
		err = nil
		if left := active.Load(); left > 0 {
			log.Error("requests still running after their connections were closed; they are cut off", "requests", left)
			err = fmt.Errorf("%d requests still running %s after the drain were cut off", left, cfg.CloseGrace)
		}
	}
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("http server shutdown: %w", err)
	}
	return nil
}
