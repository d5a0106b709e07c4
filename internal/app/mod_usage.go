package app

import (
	"context"
	"errors"

	"github.com/reel-video/reel/internal/compat"
	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/usage"
)

func initUsage(ctx context.Context, a *App) error {
	sc := schemas["usage"]
	db, err := a.Database(ctx, "usage", sc.migrations, sc.table)
	if err != nil {
		return err
	}
	events, err := a.Outbox(ctx, "usage", db)
	if err != nil {
		return err
	}
	svc := usage.New(db, events, usage.Config{DailyUpload: a.cfg.Usage.DailyUpload, DailyEgress: a.cfg.Usage.DailyEgress}, a.log.With("service", "usage"))
	a.svc.usage = svc
	h := usage.NewHandler(svc, a.verifier, userLookup{a: a, caller: "usage"})
	h.Routes(a)
	compat.NewUsage(svc, a.verifier).Routes(a)
	if a.cfg.ServiceKey != "" {
		keys, err := authn.NewServiceKeys(a.cfg.ServiceKey, "usage")
		if err != nil {
			return err
		}
		h.InternalRoutes(a, keys)
	}
	a.Every("usage-sweep", sweepEvery(a.cfg.Videos.ReserveLease), svc.Sweep)
	return a.document("usage")
}

// usageMeter returns the usage service for a module that calls it (caller
// names that module in service credentials): the service itself when it
// runs in this process, else its HTTP client at REEL_USAGE_URL, sharing the
// process's pool of service connections. Like storageQuota, call
// it at use time or from a module that starts after usage.
func (a *App) usageMeter(caller string) (usage.Meter, error) {
	if a.present["usage"] {
		if a.svc.usage == nil {
			return nil, errors.New("the usage service has not started")
		}
		return a.svc.usage, nil
	}
	base, ok := a.cfg.URLs["usage"]
	if !ok {
		return nil, errNoURL("usage")
	}
	if a.cfg.ServiceKey == "" {
		return nil, errors.New("the usage service is not in this process: set REEL_SERVICE_KEY (the same in every process) so this one may call it")
	}
	keys, err := authn.NewServiceKeys(a.cfg.ServiceKey, caller)
	if err != nil {
		return nil, err
	}
	return usage.NewClient(base, keys, nil), nil
}

// egressMeter returns the process's egress meter, for the streaming side
// (the videos module): built on first use over the usage service (in
// process or its client), and flushed by a background task. Call it from a
// module's init, before that module registers its own background tasks:
// tasks stop in reverse order, so the meter then stops (and makes its
// final flush) after the module that feeds it, and after the HTTP server
// has drained.
func (a *App) egressMeter(caller string) (*usage.EgressMeter, error) {
	if a.svc.egress != nil {
		return a.svc.egress, nil
	}
	m, err := a.usageMeter(caller)
	if err != nil {
		return nil, err
	}
	a.svc.egress = usage.NewEgressMeter(m, usage.MeterConfig{Log: a.log.With("service", caller, "component", "egress-meter")})
	a.Background("egress-meter", a.svc.egress.Run)
	return a.svc.egress, nil
}
