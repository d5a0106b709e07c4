// Package web is reel's web app: server-rendered pages (html/template) with
// small JavaScript modules and a style sheet of its own, all embedded in the
// binary, nothing fetched from elsewhere and nothing to build.
//
// Pages call the services through the interfaces below, defined here by
// their consumer: the in-process services in the all-in-one, and in split
// mode (the gateway) HTTP clients of the services' public routes that carry
// the viewer's own access token (package web/remote), so that each service
// still decides what the viewer may do. The page's session is a pair of
// HttpOnly cookies holding the users service's own access and refresh
// tokens (session.go), so the page's scripts call the JSON API with the
// cookie and never hold a token.
package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/reel-video/reel/internal/logs"
	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/storage"
	"github.com/reel-video/reel/internal/usage"
	"github.com/reel-video/reel/internal/users"
	"github.com/reel-video/reel/internal/videos"
)

// Users is the users service as the pages use it. Methods that take a
// user id are asked about the signed-in user (whose token a request's
// context carries, AccessToken) or, on the admin pages, by an admin.
type Users interface {
	Register(ctx context.Context, in users.RegisterInput) (users.User, error)
	// CreateFirstAdmin creates an admin while none exists (first run).
	CreateFirstAdmin(ctx context.Context, in users.RegisterInput) (users.User, error)
	Login(ctx context.Context, email, password string) (users.Tokens, error)
	Refresh(ctx context.Context, refresh string) (users.Tokens, error)
	Logout(ctx context.Context, c authn.Caller, refresh string) error
	Get(ctx context.Context, id string) (users.User, error)
	// Names returns the usernames of the accounts among ids, by id: the
	// owners of the videos on a page.
	Names(ctx context.Context, ids []string) (map[string]string, error)
	UpdateSelf(ctx context.Context, c authn.Caller, in users.UpdateMe) (users.User, error)
	Search(ctx context.Context, q string, req page.Request) (page.Page[users.User], error)
	Update(ctx context.Context, id string, in users.AdminUpdate) (users.User, error)
	HasAdmin(ctx context.Context) (bool, error)
	Sessions(ctx context.Context, userID string) ([]users.Session, error)
	RevokeSession(ctx context.Context, userID, sessionID string) error
	RevokeOtherSessions(ctx context.Context, userID, refresh string) (int, error)
}

// Listed is a video of a list with its poster signed for the viewer.
type Listed struct {
	videos.Video
	// PosterPath is the signed poster's path under /media, "" when the
	// video has none or cannot be played yet.
	PosterPath string
}

// Videos is the videos service as the pages use it.
type Videos interface {
	// Search is the feed, or with title the feed's videos whose title
	// contains it.
	Search(ctx context.Context, c authn.Caller, title string, req page.Request) (page.Page[Listed], error)
	Mine(ctx context.Context, c authn.Caller, req page.Request) (page.Page[Listed], error)
	Trash(ctx context.Context, c authn.Caller, req page.Request) (page.Page[videos.TrashedVideo], error)
	Get(ctx context.Context, c authn.Caller, id string) (videos.Video, error)
	Update(ctx context.Context, c authn.Caller, id string, p videos.Patch) (videos.Video, error)
	Delete(ctx context.Context, c authn.Caller, id string) error
	Restore(ctx context.Context, c authn.Caller, id string) (videos.Video, error)
	// Play grants the viewer signed media paths for v, a video Get has
	// just returned (in process it is not read again), and records the
	// playback.
	Play(ctx context.Context, c authn.Caller, v videos.Video) (videos.Grant, error)
	// Jobs, RetryJob and CancelJob are the admin's view of the videos
	// service's job queue (posters, transcodes, storyboards).
	Jobs(ctx context.Context, c authn.Caller, f videos.JobFilter, req page.Request) (page.Page[videos.Job], error)
	RetryJob(ctx context.Context, c authn.Caller, id string) (videos.Job, error)
	CancelJob(ctx context.Context, c authn.Caller, id string) (videos.Job, error)
}

// Storage is the storage service as the pages use it (storage.Quota has it).
type Storage interface {
	Usage(ctx context.Context, userID string) (storage.Usage, error)
}

// Usage is the usage service as the pages use it (usage.Meter has it).
type Usage interface {
	Today(ctx context.Context, userID string) (usage.Status, error)
}

// Logs is the activity log as the admin pages use it.
type Logs interface {
	Search(ctx context.Context, f logs.Filter, req page.Request) (page.Page[outbox.Event], error)
}

// Deps are the services behind the pages.
type Deps struct {
	Users    Users
	Videos   Videos
	Storage  Storage
	Usage    Usage
	Logs     Logs
	Verifier *authn.Verifier
	// API is the process's API routes (in the gateway, its proxy to the
	// services), to which the upload page's plain form (no JavaScript) is
	// handed in process; nil: no such form.
	API http.Handler
}

// Config configures the web app.
type Config struct {
	// MaxUploadSize is the largest single upload, checked by the upload
	// page before any byte is sent.
	MaxUploadSize int64
	// RefreshTTL is how long a refresh token lives: the refresh cookie's
	// lifetime.
	RefreshTTL time.Duration
	// TrustedProxies are the peers whose X-Forwarded-Proto is believed
	// when deciding whether cookies get the Secure flag.
	TrustedProxies []netip.Prefix
}

// App serves the pages.
type App struct {
	d       Deps
	cfg     Config
	log     *slog.Logger
	pages   map[string]*template.Template
	assets  *assets
	refresh *refresher
	// accounts remembers the signed-in accounts and owners' names while
	// no account changes (accounts.go).
	accounts *accounts
	setup    setup
	now      func() time.Time
}

// New builds the web app.
func New(d Deps, cfg Config, log *slog.Logger) (*App, error) {
	if d.Users == nil || d.Videos == nil || d.Storage == nil || d.Usage == nil || d.Logs == nil || d.Verifier == nil {
		return nil, errors.New("web: every service is needed")
	}
	as, err := loadAssets()
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	a := &App{d: d, cfg: cfg, log: log, assets: as, now: time.Now}
	a.refresh = newRefresher(d.Users, a.clock)
	a.accounts = newAccounts(d.Users, d.Verifier.Watch())
	if a.pages, err = parsePages(as, a.clock); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	return a, nil
}

func (a *App) clock() time.Time { return a.now() }

// SetClock replaces the clock, for tests.
func (a *App) SetClock(now func() time.Time) { a.now = now }

// Routes registers the pages. Every pattern is explicit (no catch-all), so
// an unknown path stays the API's 404.
func (a *App) Routes(r httpx.Router) {
	h := func(pattern string, fn http.HandlerFunc) { r.Handle(pattern, headers(fn)) }
	r.Handle("GET /static/{version}/{file...}", http.HandlerFunc(a.assets.serve))

	h("GET /login", a.loginPage)
	h("POST /login", a.form(a.login))
	h("GET /signup", a.signupPage)
	h("POST /signup", a.form(a.signup))
	h("GET /setup/{token}", a.setupPage)
	h("POST /setup/{token}", a.form(a.setupAdmin))
	// The refresh cookie is sent only under /auth/.
	h("GET /auth/refresh", a.refreshPage)
	h("POST /auth/refresh", a.form(a.refreshAPI))
	h("POST /auth/logout", a.form(a.logout))
	h("POST /auth/sessions/revoke-others", a.form(a.revokeOthers))

	h("GET /{$}", a.page(a.home))
	h("GET /watch/{id}", a.page(a.watch))
	h("GET /upload", a.page(a.uploadPage))
	if a.d.API != nil {
		h("POST /upload", a.uploadForm)
	}
	h("GET /mine", a.page(a.mine))
	h("GET /trash", a.page(a.trash))
	h("POST /videos/{id}/rename", a.form(a.page(a.rename)))
	h("POST /videos/{id}/delete", a.form(a.page(a.delete)))
	h("POST /videos/{id}/restore", a.form(a.page(a.restore)))
	h("GET /usage", a.page(a.meters))
	h("GET /account", a.page(a.account))
	h("POST /account/profile", a.form(a.page(a.changeProfile)))
	h("POST /account/password", a.form(a.page(a.changePassword)))
	h("POST /account/sessions/{id}/revoke", a.form(a.page(a.revokeSession)))

	h("GET /admin/users", a.page(a.admin(a.adminUsers)))
	h("GET /admin/users/{id}", a.page(a.admin(a.adminUser)))
	h("POST /admin/users/{id}", a.form(a.page(a.admin(a.adminUpdate))))
	h("GET /admin/log", a.page(a.admin(a.adminLog)))
	h("GET /admin/jobs", a.page(a.admin(a.adminJobs)))
	h("POST /admin/jobs/{id}/retry", a.form(a.page(a.admin(a.jobAction("retry")))))
	h("POST /admin/jobs/{id}/cancel", a.form(a.page(a.admin(a.jobAction("cancel")))))
}
