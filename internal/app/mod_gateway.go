package app

import (
	"context"

	"github.com/reel-video/reel/internal/gateway"
)

// initGateway mounts the reverse proxy to every service and the web app
// on them. The gateway owns no data; its readiness is that of every
// service behind it.
func initGateway(_ context.Context, a *App) error {
	g, err := gateway.New(a.cfg.URLs, a.cfg.HTTP.TrustedProxies, a.log.With("module", "gateway"))
	if err != nil {
		return err
	}
	g.Register(a)
	// The gateway is the public address in split mode, so its document
	// describes every public route it forwards.
	for _, svc := range gateway.Services() {
		if err := a.document(svc); err != nil {
			return err
		}
	}
	for name, check := range g.Checks() {
		a.Ready(name, check)
	}
	return initGatewayWeb(a)
}
