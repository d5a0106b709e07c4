package app

import (
	"context"
	"time"

	"github.com/reel-video/reel/internal/compat"
	"github.com/reel-video/reel/internal/logs"
	"github.com/reel-video/reel/internal/platform/authn"
)

// retentionEvery is how often expired activity events are deleted; the
// retention period is days, so an hour's slack is nothing.
const retentionEvery = time.Hour

func initLogs(ctx context.Context, a *App) error {
	sc := schemas["logs"]
	db, err := a.Database(ctx, "logs", sc.migrations, sc.table)
	if err != nil {
		return err
	}
	svc := logs.New(db, a.log.With("service", "logs"))
	a.svc.logs = svc
	h := logs.NewHandler(svc, a.verifier)
	h.Routes(a)
	// Relays in this process call svc directly; the internal route is for
	// the other processes of a split deployment, which need the key.
	var keys *authn.ServiceKeys // stays nil without a key: compat's /api/logs/add then admits nobody
	if a.cfg.ServiceKey != "" {
		if keys, err = authn.NewServiceKeys(a.cfg.ServiceKey, "logs"); err != nil {
			return err
		}
		h.InternalRoutes(a, keys)
	}
	compat.NewLogs(svc, a.verifier, keys).Routes(a)
	retention := a.cfg.Logs.Retention
	a.Every("logs-retention", retentionEvery, func(ctx context.Context) error {
		return svc.Retain(ctx, retention)
	})
	return a.document("logs")
}
