package app

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/reel-video/reel/internal/compat"
	"github.com/reel-video/reel/internal/config"
	"github.com/reel-video/reel/internal/logs"
	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/storage"
	"github.com/reel-video/reel/internal/usage"
	"github.com/reel-video/reel/internal/users"
	"github.com/reel-video/reel/internal/videos"
)

// services are the in-process services built by modules, for the modules
// that start after them. A nil field means that service runs elsewhere and
// its HTTP client is used instead.
type services struct {
	users   *users.Service
	logs    *logs.Service
	storage *storage.Service
	usage   *usage.Service
	videos  *videos.Service
	// egress is the egress meter of the streaming side (see egressMeter).
	egress *usage.EgressMeter
}

// schema is a service's embedded migrations and goose version table.
type schema struct {
	migrations fs.FS
	table      string
}

// schemas lists every service's schema, for `reel migrate`.
var schemas = map[string]schema{
	"users":   {users.Migrations(), users.MigrationTable},
	"logs":    {logs.Migrations(), logs.MigrationTable},
	"storage": {storage.Migrations(), storage.MigrationTable},
	"usage":   {usage.Migrations(), usage.MigrationTable},
	"videos":  {videos.Migrations(), videos.MigrationTable},
}

// Modules returns the registry of every module reel has.
func Modules() *Registry {
	r := NewRegistry()
	r.Register(&Module{Name: "server"})
	r.Register(&Module{Name: "users", Public: true, Deps: []string{"server"}, init: initUsers})
	// auth verifies access tokens: with the users service's own keys when it
	// runs here, else with its JWKS fetched over HTTP.
	r.Register(&Module{Name: "auth", After: []string{"users"}, init: initAuth})
	r.Register(&Module{Name: "logs", Public: true, Deps: []string{"server", "auth"}, init: initLogs})
	r.Register(&Module{Name: "storage", Public: true, Deps: []string{"server", "auth"}, After: []string{"logs"}, init: initStorage})
	r.Register(&Module{Name: "usage", Public: true, Deps: []string{"server", "auth"}, After: []string{"logs"}, init: initUsage})
	r.Register(&Module{Name: "videos", Public: true, Deps: []string{"server", "auth"}, After: []string{"logs", "storage", "usage"}, init: initVideos})
	// transcode works the videos service's jobs without its API; where
	// videos runs too, videos works them.
	r.Register(&Module{Name: "transcode", Public: true, Deps: []string{"server"}, After: []string{"logs", "storage", "videos"}, init: initTranscode})
	// The gateway serves the web app too, on the services over HTTP; auth
	// verifies the pages' access cookies with the users service's JWKS.
	r.Register(&Module{Name: "gateway", Public: true, Deps: []string{"server", "auth"}, init: initGateway})
	// web serves the pages on the in-process services, so only in all.
	r.Register(&Module{Name: "web", Deps: []string{"server", "auth"}, After: []string{"users", "logs", "storage", "usage", "videos"}, init: initWeb})
	r.Register(&Module{Name: "all", Public: true, Deps: []string{"users", "logs", "storage", "usage", "videos", "web"}})
	return r
}

func initUsers(ctx context.Context, a *App) error {
	sc := schemas["users"]
	db, err := a.Database(ctx, "users", sc.migrations, sc.table)
	if err != nil {
		return err
	}
	events, err := a.Outbox(ctx, "users", db)
	if err != nil {
		return err
	}
	svc, err := newUsers(ctx, a.cfg, db, events, a.log)
	if err != nil {
		return err
	}
	if a.cfg.Users.AdminEmail != "" {
		if err := svc.Bootstrap(ctx, a.cfg.Users.AdminEmail, a.cfg.Users.AdminPassword); err != nil {
			return err
		}
	}
	a.svc.users = svc
	svc.SetLimitSetter(limitSetter{a})
	a.verifier = authn.NewVerifier(svc)
	a.verifier.SetStanding(svc, a.watchAccounts(svc))
	svc.SetStandingChanged(a.verifier.Forget)
	h := users.NewHandler(svc, a.verifier)
	h.Routes(a)
	compat.NewUsers(svc, a.verifier).Routes(a)
	// Storage and usage in other processes ask whether an account exists.
	if a.cfg.ServiceKey != "" {
		keys, err := authn.NewServiceKeys(a.cfg.ServiceKey, "users")
		if err != nil {
			return err
		}
		h.InternalRoutes(a, keys)
	}
	a.Every("users-sweep", time.Hour, svc.Sweep)
	a.Every("users-keys", time.Minute, svc.ReloadKeys)
	return a.document("users")
}

func newUsers(ctx context.Context, cfg *config.Config, db *sqldb.DB, events *outbox.Outbox, log *slog.Logger) (*users.Service, error) {
	return users.New(ctx, db, events, users.NewHasher(cfg.Users.HashConcurrency), users.Config{
		AccessTTL: cfg.Users.AccessTTL, RefreshTTL: cfg.Users.RefreshTTL,
		LoginMaxPerAccount: cfg.Users.LoginMaxPerAccount, LoginMaxPerIP: cfg.Users.LoginMaxPerIP,
		LoginMaxPerAccountAnywhere: cfg.Users.LoginMaxPerAccountAnywhere,
		LoginWindow:                cfg.Users.LoginWindow,
	}, log.With("service", "users"))
}

func initAuth(_ context.Context, a *App) error {
	if a.verifier != nil {
		return nil
	}
	base, ok := a.cfg.URLs["users"]
	if !ok {
		return errNoURL("users")
	}
	a.verifier = authn.NewVerifier(authn.NewJWKSClient(base+"/.well-known/jwks.json", nil))
	// Every service checks that a token's account is still enabled, and
	// its current role, through the users service's internal route; so
	// does the gateway's web app for its session cookies (its proxy
	// checks no tokens).
	if a.cfg.ServiceKey != "" {
		keys, err := authn.NewServiceKeys(a.cfg.ServiceKey, "verifier")
		if err != nil {
			return err
		}
		c := users.NewClient(base, keys, nil)
		a.verifier.SetStanding(c, a.watchAccounts(c))
	} else {
		a.log.Warn("REEL_SERVICE_KEY is not set: disabled accounts' and demoted admins' access tokens keep working until they expire")
	}
	return nil
}

// watchAccounts starts the process's watch of the accounts version, which
// the caches of account data (the verifier's, the web app's) rely on.
func (a *App) watchAccounts(src authn.VersionSource) *authn.Watch {
	w := authn.NewWatch(src)
	a.Background("accounts-watch", func(ctx context.Context) error { return w.Run(ctx, a.log) })
	return w
}

// Migrate applies every service's migrations to its database.
func Migrate(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	for _, name := range config.Services {
		sc, ok := schemas[name]
		if !ok {
			continue
		}
		db, err := sqldb.Open(ctx, cfg.Databases[name], dbOptions(cfg))
		if err != nil {
			return fmt.Errorf("%s database: %w", name, err)
		}
		err = sqldb.Migrate(ctx, db, sc.migrations, sc.table)
		if err == nil && name == "videos" {
			// The job queue's tables, after the service's own.
			err = videos.MigrateQueue(ctx, db)
		}
		if err == nil && name != "logs" {
			// Every service but logs keeps its activity events in an outbox.
			ob := name + "_outbox"
			err = sqldb.Migrate(ctx, db, outbox.Migrations(ob, db.Dialect), outbox.VersionTable(ob))
		}
		_ = db.Close()
		if err != nil {
			return fmt.Errorf("%s database: %w", name, err)
		}
		log.Info("migrated", "service", name, "database", sqldb.Redacted(cfg.Databases[name]))
	}
	return nil
}

// RotateKey makes a new token signing key in the users database.
func RotateKey(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	return withUsers(ctx, cfg, log, func(svc *users.Service) error { return svc.RotateKey(ctx) })
}

// CreateUser creates an account from the command line.
func CreateUser(ctx context.Context, cfg *config.Config, log *slog.Logger, in users.RegisterInput) (users.User, error) {
	var u users.User
	err := withUsers(ctx, cfg, log, func(svc *users.Service) (err error) {
		u, err = svc.Register(ctx, in)
		return err
	})
	return u, err
}

// withUsers runs fn with a users service on the migrated users database,
// outside a server. Events it records wait in the outbox until a server's
// relay delivers them.
func withUsers(ctx context.Context, cfg *config.Config, log *slog.Logger, fn func(*users.Service) error) error {
	db, ob, err := openOffline(ctx, cfg, log, "users")
	if err != nil {
		return err
	}
	defer db.Close()
	defer ob.Wait() // before the database closes
	svc, err := newUsers(ctx, cfg, db, ob, log)
	if err != nil {
		return err
	}
	return fn(svc)
}

// openOffline opens the migrated database of a service and its outbox,
// for a command that runs the service outside a server. The caller waits
// for the outbox, then closes the database.
func openOffline(ctx context.Context, cfg *config.Config, log *slog.Logger, service string) (*sqldb.DB, *outbox.Outbox, error) {
	sc := schemas[service]
	db, err := sqldb.Open(ctx, cfg.Databases[service], dbOptions(cfg))
	if err != nil {
		return nil, nil, fmt.Errorf("%s database: %w", service, err)
	}
	table := service + "_outbox"
	err = sqldb.Migrate(ctx, db, sc.migrations, sc.table)
	if err == nil && service == "videos" {
		err = videos.MigrateQueue(ctx, db)
	}
	if err == nil {
		err = sqldb.Migrate(ctx, db, outbox.Migrations(table, db.Dialect), outbox.VersionTable(table))
	}
	if err != nil {
		_ = db.Close()
		return nil, nil, fmt.Errorf("%s database: %w", service, err)
	}
	return db, outbox.New(db, table, outbox.WithLogger(log)), nil
}
