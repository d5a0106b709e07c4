// Package gateway is reel's single public entry in split mode: it routes
// every public path to the service that owns it with a streaming reverse
// proxy (uploads and media are never buffered), keeps the request id,
// sets X-Forwarded-For correctly, answers 503 problem+json when a service is
// unreachable, and never routes /internal.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
)

// Route maps a public path pattern to the service that serves it.
type Route struct {
	Pattern string // a net/http pattern without method, e.g. "/api/v1/videos/"
	Service string
}

// Routes are the public paths of API.md and the original system's
// compatibility surface, by owning service.
var Routes = []Route{
	{"/api/v1/auth/", "users"},
	{"/api/v1/users", "users"},
	{"/api/v1/users/", "users"},
	{"/.well-known/jwks.json", "users"},
	{"/api/v1/videos", "videos"},
	{"/api/v1/videos/", "videos"},
	{"/api/v1/uploads", "videos"},
	{"/api/v1/uploads/", "videos"},
	{"/api/v1/trash", "videos"},
	{"/api/v1/jobs", "videos"},
	{"/api/v1/jobs/", "videos"},
	{"/media/", "videos"},
	{"/api/v1/storage/", "storage"},
	{"/api/v1/usage/", "usage"},
	{"/api/v1/logs", "logs"},
	{"/api/v1/logs/", "logs"},
	{"/api/users/", "users"},
	{"/api/videos/", "videos"},
	{"/api/storage/", "storage"},
	{"/api/usage/", "usage"},
	{"/api/logs/", "logs"},
}

// Services lists the services the gateway needs a base URL for.
func Services() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range Routes {
		if !seen[r.Service] {
			seen[r.Service] = true
			out = append(out, r.Service)
		}
	}
	sort.Strings(out)
	return out
}

// ErrUpstream is the answer when a service cannot be reached.
var errUpstreamDown = errors.New("upstream unavailable")

// Gateway proxies public paths to services.
type Gateway struct {
	pools   map[string]*pool
	proxies map[string]*httputil.ReverseProxy
	trusted []netip.Prefix
	log     *slog.Logger
	client  *http.Client
}

// DefaultTryTimeout is how long an idempotent request waits for one
// replica's answer headers before the gateway tries the next replica.
const DefaultTryTimeout = 10 * time.Second

// Option tunes a gateway.
type Option func(*options)

type options struct{ tryTimeout time.Duration }

// WithTryTimeout sets how long an idempotent request waits for one
// replica's answer headers before it is tried on the next (zero: no
// bound).
func WithTryTimeout(d time.Duration) Option { return func(o *options) { o.tryTimeout = d } }

// New builds a gateway over the services' base URLs; a service's value may
// list several replicas, separated by commas, which must share their
// path. trusted are the proxies in front of the gateway whose
// X-Forwarded-For it extends.
func New(bases map[string]string, trusted []netip.Prefix, log *slog.Logger, opts ...Option) (*Gateway, error) {
	o := options{tryTimeout: DefaultTryTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	g := &Gateway{pools: map[string]*pool{}, proxies: map[string]*httputil.ReverseProxy{}, trusted: trusted, log: log}
	transport := &http.Transport{
		Proxy:                 nil, // never send service traffic through an environment proxy
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	g.client = &http.Client{Transport: transport, Timeout: 3 * time.Second}
	var missing []string
	for _, svc := range Services() {
		env := "REEL_" + strings.ToUpper(svc) + "_URL"
		base, ok := bases[svc]
		if !ok || strings.TrimSpace(base) == "" {
			missing = append(missing, env)
			continue
		}
		p := &pool{svc: svc, base: transport, tryTimeout: o.tryTimeout, onFail: func(svc, host string, err error) {
			log.Warn("gateway: replica out of rotation", "service", svc, "replica", host, "for", ejectFor, "err", err)
		}}
		for _, one := range strings.Split(base, ",") {
			u, err := url.Parse(strings.TrimRight(strings.TrimSpace(one), "/"))
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("gateway: %s=%q is not a comma list of http(s) URLs", env, base)
			}
			if len(p.replicas) > 0 && u.Path != p.replicas[0].url.Path {
				return nil, fmt.Errorf("gateway: the replicas in %s must share one path", env)
			}
			p.replicas = append(p.replicas, &replica{url: u})
		}
		g.pools[svc] = p
		g.proxies[svc] = g.proxy(svc, p.replicas[0].url, p)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("gateway: set %s to the services' base URLs", strings.Join(missing, ", "))
	}
	return g, nil
}

func (g *Gateway) proxy(svc string, target *url.URL, transport http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The path is the service's; the pool picks the replica.
			pr.SetURL(target)
			// Extend the chain only when our peer is a trusted proxy; a
			// client's own X-Forwarded-For is otherwise dropped, so services
			// (which trust the gateway) see the real client address.
			if httpx.ClientIP(pr.In, g.trusted) != peerIP(pr.In) {
				pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
			}
			pr.SetXForwarded()
			pr.Out.Header.Set("X-Request-ID", obs.RequestFrom(pr.In.Context()).ID)
		},
		// CORS is the gateway's answer in split mode (REEL_CORS_ORIGINS on
		// the gateway): a service that also sets it would double
		// Access-Control-Allow-Origin, which browsers refuse outright.
		ModifyResponse: func(res *http.Response) error {
			for k := range res.Header {
				if strings.HasPrefix(k, "Access-Control-") {
					delete(res.Header, k)
				}
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				// The client went away (the answer reaches no one), or
				// its body was cut off as too slow while the request
				// waited: it must not get an empty 200.
				obs.Logger(r.Context(), g.log).Info("gateway: request ended", "service", svc, "err", err)
				httpx.Error(w, r, fmt.Errorf("%s: %w", svc, httpx.ErrSlowBody))
				return
			}
			obs.Logger(r.Context(), g.log).Warn("gateway: service unreachable", "service", svc, "err", err)
			httpx.Error(w, r, fmt.Errorf("%s: %w: %w", svc, errUpstreamDown, errsUnavailable))
		},
	}
}

func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Register mounts the public routes and refuses /internal.
func (g *Gateway) Register(r httpx.Router) {
	for _, rt := range Routes {
		r.Handle(rt.Pattern, g.proxies[rt.Service])
	}
	r.Handle("/internal/", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		httpx.Error(w, req, errNotRouted)
	}))
}

// Checks returns one readiness check per service: the /readyz of one of
// its replicas at least answers 200.
func (g *Gateway) Checks() map[string]func(context.Context) error {
	out := map[string]func(context.Context) error{}
	for svc, p := range g.pools {
		out["service:"+svc] = func(ctx context.Context) error {
			var errs []error
			for _, r := range p.replicas {
				err := ready(ctx, g.client, r.url)
				if err == nil {
					return nil
				}
				errs = append(errs, fmt.Errorf("%s %s: %w", svc, r.url.Host, err))
			}
			return errors.Join(errs...)
		}
	}
	return out
}

// ProbeEvery is how often Probe should run.
const ProbeEvery = 2 * time.Second

// Probe asks the /readyz of every replica of every service with more than
// one, and takes those that do not answer out of rotation until they do.
func (g *Gateway) Probe(ctx context.Context) error {
	for _, p := range g.pools {
		if len(p.replicas) > 1 {
			p.probe(ctx, g.client)
		}
	}
	return nil
}
