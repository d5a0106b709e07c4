package app

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/users"
	"github.com/reel-video/reel/internal/web"
	"github.com/reel-video/reel/internal/web/remote"
)

// initWeb serves the web app's pages on the services of this process. It
// runs in the all-in-one, where every service is in process.
func initWeb(_ context.Context, a *App) error {
	s := a.svc
	if s.users == nil || s.videos == nil || s.storage == nil || s.usage == nil || s.logs == nil {
		return errors.New("the web app needs every service in its process (-target=all)")
	}
	return a.serveWeb(web.Deps{
		Users: s.users, Videos: web.LocalVideos(s.videos), Storage: s.storage, Usage: s.usage, Logs: s.logs, Verifier: a.verifier,
		API: a.mux,
	})
}

// initGatewayWeb serves the web app in the gateway (split mode): the pages
// call each service's public routes at its own base URL with the viewer's
// token (web/remote), never the gateway's own address, and the users
// service's internal routes for the owners' names and the first run. The
// upload page's plain form goes to the gateway's proxy in process.
func initGatewayWeb(a *App) error {
	if a.cfg.ServiceKey == "" {
		return errors.New("the gateway's web app asks the users service for what no public route offers: set REEL_SERVICE_KEY (the same in every process)")
	}
	keys, err := authn.NewServiceKeys(a.cfg.ServiceKey, "gateway")
	if err != nil {
		return err
	}
	svc, err := remote.New(remote.Config{URLs: a.cfg.URLs, Internal: users.NewClient(a.cfg.URLs["users"], keys, nil)})
	if err != nil {
		return err
	}
	return a.serveWeb(web.Deps{
		Users: svc.Users, Videos: svc.Videos, Storage: svc.Storage, Usage: svc.Usage, Logs: svc.Logs, Verifier: a.verifier,
		API: a.mux,
	})
}

// firstRunRetry is how often a process whose users service did not answer
// asks again whether an admin exists (in split mode users may start after
// the gateway).
const firstRunRetry = 5 * time.Second

// serveWeb mounts the web app on d.
func (a *App) serveWeb(d web.Deps) error {
	w, err := web.New(d, web.Config{
		MaxUploadSize: a.cfg.Videos.MaxUploadSize, RefreshTTL: a.cfg.Users.RefreshTTL, TrustedProxies: a.cfg.HTTP.TrustedProxies,
	}, a.log.With("module", "web"))
	if err != nil {
		return err
	}
	w.Routes(pageRouter{a})
	// Once the server listens (background tasks start then), a process
	// with no admin prints the one-time link that creates one.
	a.Background("web-first-run", func(ctx context.Context) error {
		for {
			path, err := w.FirstRun(ctx)
			if err == nil {
				if path != "" {
					a.log.Warn("no admin account exists yet: open this one-time link to create it", "url", a.baseURL()+path)
				}
				return nil
			}
			a.log.Warn("cannot tell whether an admin exists yet; asking again shortly", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(firstRunRetry):
			}
		}
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
