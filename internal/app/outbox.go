package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/reel-video/reel/internal/logs"
	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Outbox migrates the outbox table of service ("<service>_outbox") in db,
// and registers a background relay that delivers its events to the
// activity log: to the logs service in this process when it runs here,
// else over HTTP to REEL_LOGS_URL with a service credential. The relay
// stops after the HTTP server has drained (background tasks stop in
// reverse order), so events recorded by the last requests still go out.
func (a *App) Outbox(ctx context.Context, service string, db *sqldb.DB) (*outbox.Outbox, error) {
	table := service + "_outbox"
	if err := sqldb.Migrate(ctx, db, outbox.Migrations(table, db.Dialect), outbox.VersionTable(table)); err != nil {
		return nil, fmt.Errorf("%s outbox: %w", service, err)
	}
	m, err := outbox.NewMetrics(a.prom)
	if err != nil {
		return nil, fmt.Errorf("%s outbox: %w", service, err)
	}
	sink, err := a.logsSink(service)
	if err != nil {
		return nil, fmt.Errorf("%s outbox: %w", service, err)
	}
	ob := outbox.New(db, table, outbox.WithMetrics(m), outbox.WithLogger(a.log.With("service", service)))
	a.Background("outbox-relay:"+service, func(ctx context.Context) error {
		return ob.Run(ctx, sink)
	})
	return ob, nil
}

// logsSink is where the relay of service delivers.
func (a *App) logsSink(service string) (outbox.Sink, error) {
	if a.present["logs"] {
		// Resolved at delivery time: a module that starts before logs
		// (users does) registers its relay before the logs service exists,
		// and background tasks only start once every module has.
		return outbox.SinkFunc(func(ctx context.Context, events []outbox.Event) error {
			if a.svc.logs == nil {
				return errors.New("the logs service has not started")
			}
			return a.svc.logs.Ingest(ctx, events)
		}), nil
	}
	base, ok := a.cfg.URLs["logs"]
	if !ok {
		return nil, errNoURL("logs")
	}
	if a.cfg.ServiceKey == "" {
		return nil, errors.New("the logs service is not in this process: set REEL_SERVICE_KEY (the same in every process) so this one may deliver activity events to it")
	}
	keys, err := authn.NewServiceKeys(a.cfg.ServiceKey, service)
	if err != nil {
		return nil, err
	}
	return logs.NewClient(base, keys, nil), nil
}
