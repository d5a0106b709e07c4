package app

import (
	"context"
	"strings"

	"github.com/reel-video/reel/internal/gateway"
)

// initGateway mounts the reverse proxy to every service and the web app
// on them. The gateway owns no data; its readiness is that of every
// service behind it.
func initGateway(_ context.Context, a *App) error {
	bases := map[string]string{}
	for svc, urls := range a.cfg.Replicas {
		bases[svc] = strings.Join(urls, ",")
	}
	g, err := gateway.New(bases, a.cfg.HTTP.TrustedProxies, a.log.With("module", "gateway"),
		gateway.WithTryTimeout(a.cfg.GatewayTryTimeout))
	if err != nil {
		return err
	}
	g.Register(a)
	a.Every("gateway-probe", gateway.ProbeEvery, g.Probe)
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
