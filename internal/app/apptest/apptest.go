// Package apptest runs a reel app inside a test's process, on loopback:
// the in-process counterpart of integration's real binaries, for packages
// whose tests need the whole app (app, web, loadtest).
package apptest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/app"
	"github.com/reel-video/reel/internal/config"
)

// New builds an app from vars (REEL_* settings), on a fresh data
// directory and a 10 s shutdown unless vars say otherwise.
func New(t testing.TB, vars map[string]string, log *slog.Logger) *app.App {
	t.Helper()
	all := map[string]string{"REEL_DATA_DIR": t.TempDir(), "REEL_SHUTDOWN_TIMEOUT": "10s"}
	for k, v := range vars {
		all[k] = v
	}
	cfg, _, err := config.Load("serve", nil, func(k string) string { return all[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Start runs a on a loopback port until stop is called or the test ends,
// and returns its base URL once it serves. stop returns Run's error.
func Start(t testing.TB, a *app.App) (base string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return StartOn(t, a, ln)
}

// StartOn is Start on a given listener, for processes that must know each
// other's address before they start.
func StartOn(t testing.TB, a *app.App, ln net.Listener) (base string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx, ln) }()
	stopped, result := false, error(nil)
	stop = func() error {
		if stopped {
			return result
		}
		stopped = true
		cancel()
		select {
		case result = <-errc:
		case <-time.After(20 * time.Second):
			t.Error("reel did not stop")
		}
		return result
	}
	t.Cleanup(func() { _ = stop() })
	ready := make(chan struct{})
	go func() { a.Addr(); close(ready) }()
	select {
	case <-ready:
	case err := <-errc:
		stopped = true
		t.Fatalf("reel did not start: %v", err)
	}
	return "http://" + a.Addr().String(), stop
}
