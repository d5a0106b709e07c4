package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// A service may run as several replicas (REEL_<SERVICE>_URL lists their
// base URLs). The gateway spreads requests over the replicas it believes
// up, takes a replica out of rotation for a while when a connection to it
// fails or its /readyz does not answer 200 (ejection), and tries a request
// that failed to connect again on another replica when doing so cannot do
// anything twice: an idempotent request without a body (GET, HEAD,
// OPTIONS) on any failure before its answer's headers, any other request
// only when no connection was made (and so no byte of its body read). Everything else — a POST whose body
// went out, a tus PATCH — answers 503 and is the client's to retry (a tus
// client asks the offset with HEAD, which is retried, and resumes).

const (
	// ejectFor is how long a failed replica stays out of rotation before
	// a request may try it again (the health probe may bring it back
	// sooner).
	ejectFor = 5 * time.Second
	// probeTimeout bounds one replica's /readyz during a health probe.
	probeTimeout = 2 * time.Second
)

// replica is one base URL of a service.
type replica struct {
	url *url.URL
	// downUntil is the Unix nanosecond time until which the replica is
	// out of rotation; zero or past means up.
	downUntil atomic.Int64
}

func (r *replica) up(now time.Time) bool { return r.downUntil.Load() <= now.UnixNano() }

func (r *replica) eject(now time.Time) { r.downUntil.Store(now.Add(ejectFor).UnixNano()) }

// pool is a service's replicas and the transport that tries them.
type pool struct {
	svc      string
	replicas []*replica
	next     atomic.Uint64
	base     http.RoundTripper
	// tryTimeout bounds the wait for an idempotent request's answer
	// headers on one replica before it is tried on the next: a replica
	// cut off the network answers nothing rather than refusing.
	tryTimeout time.Duration
	onFail     func(svc, host string, err error)
}

// order is the replicas to try for one request: those up first, from a
// rotating start, then those ejected (when every replica is down, the
// request still tries them rather than fail unseen).
func (p *pool) order(now time.Time) []*replica {
	n := len(p.replicas)
	start := int(p.next.Add(1) % uint64(n))
	out := make([]*replica, 0, n)
	var down []*replica
	for i := range n {
		r := p.replicas[(start+i)%n]
		if r.up(now) {
			out = append(out, r)
		} else {
			down = append(down, r)
		}
	}
	return append(out, down...)
}

// idempotent reports whether req may be sent again after it may have
// reached a replica.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return req.Body == nil || req.Body == http.NoBody
	}
	return false
}

// RoundTrip sends req to the service's replicas in turn until one
// answers, or the request may not be tried again.
func (p *pool) RoundTrip(req *http.Request) (*http.Response, error) {
	retry := idempotent(req)
	// A body is lent to each attempt without its Close (the server
	// closes the inbound body), and an attempt that failed to connect
	// before reading a byte of it hands it on to the next replica.
	var body *lentBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &lentBody{r: req.Body}
	}
	var lastErr error
	for i, r := range p.order(time.Now()) {
		// Another attempt goes to the next replica only when sending the
		// request again cannot do anything twice.
		if i > 0 && !retry && (!unconnected(lastErr) || (body != nil && body.read.Load())) {
			break
		}
		if err := req.Context().Err(); err != nil {
			return nil, err
		}
		out := req.Clone(req.Context())
		out.URL.Scheme, out.URL.Host = r.url.Scheme, r.url.Host
		if body != nil {
			out.Body = body
		}
		res, err := p.try(out, retry)
		if err == nil {
			return res, nil
		}
		lastErr = err
		if req.Context().Err() != nil {
			return nil, err // the client went away: not the replica's fault
		}
		r.eject(time.Now())
		p.onFail(p.svc, r.url.Host, err)
	}
	return nil, lastErr
}

// lentBody is a request body that remembers whether any of it was read,
// and that its borrowers cannot close.
type lentBody struct {
	r    io.Reader
	read atomic.Bool
}

func (b *lentBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.r.Read(p)
}

func (b *lentBody) Close() error { return nil }

// try sends one attempt. An idempotent attempt gets tryTimeout to answer
// its headers; its body is then read without that bound.
func (p *pool) try(req *http.Request, bounded bool) (*http.Response, error) {
	if !bounded || p.tryTimeout <= 0 {
		return p.base.RoundTrip(req)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(p.tryTimeout, func() { cancel(errTryTimeout) })
	res, err := p.base.RoundTrip(req.WithContext(ctx))
	if !timer.Stop() || err != nil {
		cancel(nil)
		if err != nil && errors.Is(context.Cause(ctx), errTryTimeout) {
			err = fmt.Errorf("%w: %w", errTryTimeout, err)
		}
		if err == nil {
			res.Body.Close()
			err = errTryTimeout
		}
		return nil, err
	}
	res.Body = &cancelOnClose{ReadCloser: res.Body, cancel: func() { cancel(nil) }}
	return res, nil
}

var errTryTimeout = errors.New("replica did not answer in time")

// unconnected reports whether err is a failure to connect, after which no
// byte of the request reached the replica.
func unconnected(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

type cancelOnClose struct {
	io.ReadCloser
	once   sync.Once
	cancel func()
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.once.Do(c.cancel)
	return err
}

// probe asks every replica's /readyz and ejects those that do not answer
// 200, so that requests stop meeting a dead or cut-off replica at all;
// a replica that answers again comes back at once.
func (p *pool) probe(ctx context.Context, client *http.Client) {
	var wg sync.WaitGroup
	for _, r := range p.replicas {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			if err := ready(ctx, client, r.url); err != nil {
				if r.up(time.Now()) {
					p.onFail(p.svc, r.url.Host, err)
				}
				r.eject(time.Now())
				return
			}
			r.downUntil.Store(0)
		})
	}
	wg.Wait()
}

// ready asks base's /readyz.
func ready(ctx context.Context, client *http.Client, base *url.URL) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.JoinPath("/readyz").String(), nil)
	if err != nil {
		return err
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<16))
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz answered %d", res.StatusCode)
	}
	return nil
}
