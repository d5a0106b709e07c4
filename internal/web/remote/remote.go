// Package remote is the web app's services in split mode, where the
// gateway serves the pages and every service runs elsewhere: HTTP clients
// of the services' public routes, called with the signed-in viewer's own
// access token (web.AccessToken), so that each service decides what the
// viewer may see and do exactly as it does for any API client. What no
// public route offers (the owners' names on a list, the first-run admin)
// goes to the users service's internal routes with the process's service
// credential (users.Client).
//
// The clients call each service's own base URL (REEL_<SERVICE>_URL), never
// the gateway's public address: a page costs no second trip through the
// proxy. They pass on the viewer's request id, address (X-Forwarded-For,
// which the services believe from the gateway, REEL_TRUSTED_PROXIES) and
// user agent, so that login throttling and the activity log see the
// viewer, not the gateway. A refusal comes back as the service's own
// classified error (kind by status, code, message, fields, Retry-After),
// which the pages show as they show an in-process one.
package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/users"
	"github.com/reel-video/reel/internal/web"
)

var (
	_ web.Users   = (*Users)(nil)
	_ web.Videos  = (*Videos)(nil)
	_ web.Storage = (*Storage)(nil)
	_ web.Usage   = (*Usage)(nil)
	_ web.Logs    = (*Logs)(nil)
)

// Timeout bounds one call, body included: these are small JSON exchanges
// behind a page the viewer waits for.
const Timeout = 10 * time.Second

// maxAnswer bounds what a client reads of an answer (a page of 100 log
// events is the largest).
const maxAnswer = 4 << 20

// Services are the five services over HTTP.
type Services struct {
	Users   *Users
	Videos  *Videos
	Storage *Storage
	Usage   *Usage
	Logs    *Logs
}

// Config configures the clients.
type Config struct {
	// URLs are the services' base URLs by name: users, videos, storage,
	// usage and logs.
	URLs map[string]string
	// Internal is the users service's internal client (service
	// credential), for what no public route offers.
	Internal *users.Client
	// HTTP is the client the calls go through; nil: a pool of its own.
	HTTP *http.Client
}

// New returns the clients of every service.
func New(cfg Config) (*Services, error) {
	if cfg.Internal == nil {
		return nil, errors.New("remote: the users service's internal client is needed")
	}
	hc := cfg.HTTP
	if hc == nil {
		hc = newHTTP()
	}
	apis := map[string]*api{}
	for _, svc := range []string{"users", "videos", "storage", "usage", "logs"} {
		base := strings.TrimRight(cfg.URLs[svc], "/")
		u, err := url.Parse(base)
		if base == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("remote: REEL_%s_URL=%q is not an http(s) URL", strings.ToUpper(svc), base)
		}
		apis[svc] = &api{service: svc, base: base, http: hc}
	}
	return &Services{
		Users:   &Users{api: apis["users"], internal: cfg.Internal},
		Videos:  &Videos{api: apis["videos"]},
		Storage: &Storage{api: apis["storage"]},
		Usage:   &Usage{api: apis["usage"]},
		Logs:    &Logs{api: apis["logs"]},
	}, nil
}

// newHTTP is a pool sized for pages: every page makes a few calls, so the
// connections to each service are kept warm. No environment proxy: these
// calls stay inside the deployment.
func newHTTP() *http.Client {
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: Timeout,
	}
	return &http.Client{Transport: t, Timeout: Timeout}
}

// api is one service's public routes.
type api struct {
	service string
	base    string
	http    *http.Client
}

// errNoToken is a page calling a service without a signed-in viewer in
// its context: a bug in the page, not the viewer's doing.
var errNoToken = errors.New("no access token in the request context")

// call sends in (nil: no body) as JSON as the viewer whose token ctx
// carries, and decodes a 2xx answer into out (nil to ignore it).
func (c *api) call(ctx context.Context, method, path string, query url.Values, in, out any) error {
	tok := web.AccessToken(ctx)
	if tok == "" {
		return fmt.Errorf("%s %s: %w", c.service, path, errNoToken)
	}
	return c.send(ctx, tok, method, path, query, in, out)
}

// anonymous is call without a token: registration, login and refresh.
func (c *api) anonymous(ctx context.Context, method, path string, in, out any) error {
	return c.send(ctx, "", method, path, nil, in, out)
}

func (c *api) send(ctx context.Context, token, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode: %w", c.service, path, err)
		}
		body = bytes.NewReader(b)
	}
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", c.service, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	m := obs.RequestFrom(ctx)
	if m.ID != "" {
		req.Header.Set("X-Request-ID", m.ID)
	}
	if m.IP != "" {
		req.Header.Set("X-Forwarded-For", m.IP)
	}
	if m.UserAgent != "" {
		req.Header.Set("User-Agent", m.UserAgent)
	}
	res, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s: %w: %w", c.service, errs.ErrUnavailable, err)
	}
	defer func() {
		// Drain so the connection goes back to the pool.
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxAnswer))
		_ = res.Body.Close()
	}()
	if res.StatusCode/100 != 2 {
		return c.refusal(res)
	}
	if out == nil || res.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, maxAnswer)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", c.service, path, err)
	}
	return nil
}

// refusal turns a problem answer back into the classified error the
// service answered with. A 500, or an answer that is no problem document,
// stays unclassified: the viewer sees a generic failure, the log why.
func (c *api) refusal(res *http.Response) error {
	var p httpx.Problem
	_ = json.NewDecoder(io.LimitReader(res.Body, maxAnswer)).Decode(&p)
	kind := httpx.KindOf(res.StatusCode)
	if kind == errs.Internal || p.Code == "" {
		return fmt.Errorf("%s: unexpected answer: status %d %s", c.service, res.StatusCode, p.Code)
	}
	e := &errs.Error{Kind: kind, Code: p.Code, Msg: p.Detail, Fields: p.Errors}
	if secs, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && secs > 0 {
		e.RetryAfter = time.Duration(secs) * time.Second
	}
	return fmt.Errorf("%s: %w", c.service, e)
}

// self reports whether id is the signed-in viewer's: their own figures
// are on the /me routes, anyone else's on the admin routes.
func self(ctx context.Context, id string) bool {
	c, ok := authn.CallerFrom(ctx)
	return ok && c.UserID == id
}

// pageQuery is a page request as the list routes take it.
func pageQuery(req page.Request) url.Values {
	q := url.Values{}
	if !req.After.Zero() {
		q.Set("cursor", req.After.Encode())
	}
	if req.Limit > 0 {
		q.Set("limit", strconv.Itoa(req.Limit))
	}
	return q
}

// localPath is the path (and query) of a URL a service answered with:
// the pages serve media from their own origin, where the gateway routes
// /media to the videos service. "" for anything unusable.
func localPath(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || !strings.HasPrefix(u.Path, "/") {
		return ""
	}
	p := u.EscapedPath()
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	return p
}
