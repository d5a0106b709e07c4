package app

import (
	"context"
	"errors"
	"time"

	"github.com/reel-video/reel/internal/compat"
	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/storage"
)

// sweepEvery is how often the storage and usage sweeps release lapsed
// reservations: every minute, or every half lease when the leases of
// uploads (REEL_RESERVE_LEASE) are shorter, so that a killed process's
// holds come back within a lease and a half.
func sweepEvery(lease time.Duration) time.Duration {
	return min(time.Minute, max(time.Second, lease/2))
}

func initStorage(ctx context.Context, a *App) error {
	sc := schemas["storage"]
	db, err := a.Database(ctx, "storage", sc.migrations, sc.table)
	if err != nil {
		return err
	}
	events, err := a.Outbox(ctx, "storage", db)
	if err != nil {
		return err
	}
	svc := storage.New(db, events, storage.Config{DefaultQuota: a.cfg.Storage.Quota}, a.log.With("service", "storage"))
	a.svc.storage = svc
	h := storage.NewHandler(svc, a.verifier, userLookup{a: a, caller: "storage"})
	h.Routes(a)
	compat.NewStorage(svc, a.verifier).Routes(a)
	// Modules in this process call svc directly; the internal routes are
	// for the other processes of a split deployment, which need the key.
	if a.cfg.ServiceKey != "" {
		keys, err := authn.NewServiceKeys(a.cfg.ServiceKey, "storage")
		if err != nil {
			return err
		}
		h.InternalRoutes(a, keys)
	}
	a.Every("storage-sweep", sweepEvery(a.cfg.Videos.ReserveLease), svc.Sweep)
	return a.document("storage")
}

// storageQuota returns the storage service for a module that calls it
// (caller names that module in service credentials): the service itself
// when it runs in this process, else its HTTP client at REEL_STORAGE_URL.
// The client shares the process's pool of service connections, so calling this
// per request opens no new connections. Call it at use time, or in a module
// that starts after storage: a module that starts earlier would find the
// in-process service not built yet.
func (a *App) storageQuota(caller string) (storage.Quota, error) {
	if a.present["storage"] {
		if a.svc.storage == nil {
			return nil, errors.New("the storage service has not started")
		}
		return a.svc.storage, nil
	}
	base, ok := a.cfg.URLs["storage"]
	if !ok {
		return nil, errNoURL("storage")
	}
	if a.cfg.ServiceKey == "" {
		return nil, errors.New("the storage service is not in this process: set REEL_SERVICE_KEY (the same in every process) so this one may call it")
	}
	keys, err := authn.NewServiceKeys(a.cfg.ServiceKey, caller)
	if err != nil {
		return nil, err
	}
	return storage.NewClient(base, keys, nil), nil
}
