package app

import (
	"context"
	"errors"
	"net"
	"net/http"

	"github.com/reel-video/reel/internal/web"
)

// initWeb serves the web app's pages on the services of this process. It
// runs in the all-in-one, where every service is in process.
func initWeb(_ context.Context, a *App) error {
	s := a.svc
	if s.users == nil || s.videos == nil || s.storage == nil || s.usage == nil || s.logs == nil {
		return errors.New("the web app needs every service in its process (-target=all)")
	}
	w, err := web.New(web.Deps{
		Users: s.users, Videos: s.videos, Storage: s.storage, Usage: s.usage, Logs: s.logs, Verifier: a.verifier,
		API: a.mux,
	}, web.Config{
		MaxUploadSize: a.cfg.Videos.MaxUploadSize, RefreshTTL: a.cfg.Users.RefreshTTL, TrustedProxies: a.cfg.HTTP.TrustedProxies,
	}, a.log.With("module", "web"))
	if err != nil {
		return err
	}
	w.Routes(pageRouter{a})
	// Once the server listens (background tasks start then), a process
	// with no admin prints the one-time link that creates one.
	a.Background("web-first-run", func(ctx context.Context) error {
		path, err := w.FirstRun(ctx)
		if err != nil || path == "" {
			return err
		}
		a.log.Warn("no admin account exists yet: open this one-time link to create it", "url", a.baseURL()+path)
		return nil
	})
	return nil
}

// pageRouter registers the web app's routes as pages, outside the API.
type pageRouter struct{ a *App }

func (p pageRouter) Handle(pattern string, h http.Handler) { p.a.HandlePage(pattern, h) }

// baseURL is the address a person on this machine opens the server at.
func (a *App) baseURL() string {
	scheme := "http"
	if a.cfg.HTTP.TLSCert != "" {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(a.Addr().String())
	if err != nil {
		return scheme + "://" + a.Addr().String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
