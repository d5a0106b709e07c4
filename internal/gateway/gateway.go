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
	"io"
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
	upstreams map[string]*url.URL
	proxies   map[string]*httputil.ReverseProxy
	trusted   []netip.Prefix
	log       *slog.Logger
	client    *http.Client
}

// New builds a gateway over the services' base URLs. trusted are the
// proxies in front of the gateway whose X-Forwarded-For it extends.
func New(bases map[string]string, trusted []netip.Prefix, log *slog.Logger) (*Gateway, error) {
	g := &Gateway{upstreams: map[string]*url.URL{}, proxies: map[string]*httputil.ReverseProxy{}, trusted: trusted, log: log}
	transport := &http.Transport{
		Proxy:                 nil, // never send service traffic through an environment proxy
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	g.client = &http.Client{Transport: transport, Timeout: 3 * time.Second}
	var missing []string
	for _, svc := range Services() {
		base, ok := bases[svc]
		if !ok || base == "" {
			missing = append(missing, "REEL_"+strings.ToUpper(svc)+"_URL")
			continue
		}
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("gateway: REEL_%s_URL=%q is not an http(s) URL", strings.ToUpper(svc), base)
		}
		g.upstreams[svc] = u
		g.proxies[svc] = g.proxy(svc, u, transport)
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
				return // the client went away; nothing to answer
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

// Checks returns one readiness check per service: its /readyz answers 200.
func (g *Gateway) Checks() map[string]func(context.Context) error {
	out := map[string]func(context.Context) error{}
	for svc, u := range g.upstreams {
		readyz := u.JoinPath("/readyz").String()
		out["service:"+svc] = func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, readyz, nil)
			if err != nil {
				return err
			}
			res, err := g.client.Do(req)
			if err != nil {
				return fmt.Errorf("%s: %w", svc, err)
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<16))
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: readyz answered %d", svc, res.StatusCode)
			}
			return nil
		}
	}
	return out
}
