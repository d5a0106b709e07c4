package authn

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/reel-video/reel/internal/platform/backoff"
	"github.com/reel-video/reel/internal/platform/errs"
)

// JWKSClient is a KeySource that fetches the users service's key set over
// HTTP and caches it, so that every service verifies tokens on its own.
//
//   - Known keys are answered from the cache, never waiting for the network:
//     when the set is older than MaxAge it is refreshed in the background,
//     and while the users service is down (or restarting) the cached keys
//     keep working, so existing tokens do too.
//   - An unknown kid triggers a fetch that the request waits for, at most
//     once per MinRefresh, so forged kids cannot make us hammer the users
//     service. Concurrent requests share one fetch.
//   - A fetch is a GET, safe to repeat: it is tried Attempts times on
//     network errors and 5xx answers, with exponential backoff and jitter.
//   - When no key set was ever fetched and the users service cannot be
//     reached, verification fails with errs.ErrUnavailable (503 with
//     Retry-After), not as an invalid token: the token may well be good.
type JWKSClient struct {
	URL string
	// HTTP is the client of every fetch; its connections are reused.
	HTTP       *http.Client
	MinRefresh time.Duration
	MaxAge     time.Duration
	// Attempts is how many times one fetch is tried; Backoff is the first
	// pause between tries, doubled after each.
	Attempts int
	Backoff  time.Duration

	mu       sync.Mutex
	keys     map[string]ed25519.PublicKey
	fetched  time.Time
	tried    time.Time
	inflight chan struct{} // closed when the fetch in progress ends
	lastErr  error
}

// jwksTimeout bounds one attempt of a fetch, body included.
const jwksTimeout = 5 * time.Second

// maxJWKS bounds what is read of a key set.
const maxJWKS = 1 << 20

// jwksHTTP is shared by the JWKS clients of a process, so their connections
// to the users service are pooled and reused.
var jwksHTTP = sync.OnceValue(func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = jwksTimeout
	return &http.Client{Timeout: jwksTimeout, Transport: t}
})

// NewJWKSClient returns a client for the key set at url. hc may be nil for
// the process's shared client (timeouts, pooled connections).
func NewJWKSClient(url string, hc *http.Client) *JWKSClient {
	if hc == nil {
		hc = jwksHTTP()
	}
	return &JWKSClient{URL: url, HTTP: hc, MinRefresh: 10 * time.Second, MaxAge: 5 * time.Minute, Attempts: 3, Backoff: 100 * time.Millisecond}
}

// PublicKey implements KeySource.
func (c *JWKSClient) PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	c.mu.Lock()
	if k, ok := c.keys[kid]; ok {
		if time.Since(c.fetched) > c.MaxAge && c.inflight == nil && time.Since(c.tried) >= c.MinRefresh {
			c.refresh() // in the background: this request goes on with the cached key
		}
		c.mu.Unlock()
		return k, nil
	}
	var wait chan struct{}
	switch {
	case c.inflight != nil:
		wait = c.inflight
	case c.keys == nil || time.Since(c.tried) >= c.MinRefresh:
		wait = c.refresh()
	}
	c.mu.Unlock()
	if wait == nil {
		return nil, fmt.Errorf("kid %q: %w", kid, ErrUnknownKey)
	}
	select {
	case <-wait:
	case <-ctx.Done():
		return nil, fmt.Errorf("fetch jwks: %w", ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.keys[kid]; ok {
		return k, nil
	}
	if c.keys == nil && c.lastErr != nil {
		return nil, c.lastErr
	}
	return nil, fmt.Errorf("kid %q: %w", kid, ErrUnknownKey)
}

// refresh starts a fetch that outlives the request that needed it, so a
// request that gives up does not waste it for the others. c.mu is held.
func (c *JWKSClient) refresh() chan struct{} {
	done := make(chan struct{})
	c.inflight, c.tried = done, time.Now()
	go func() {
		keys, err := c.fetch(context.Background())
		c.mu.Lock()
		if err == nil {
			c.keys, c.fetched = keys, time.Now()
		}
		c.lastErr, c.inflight = err, nil
		c.mu.Unlock()
		close(done)
	}()
	return done
}

// fetch gets the key set, retrying failures worth retrying.
func (c *JWKSClient) fetch(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	attempts := max(1, c.Attempts)
	var err error
	for i := range attempts {
		if i > 0 {
			if cerr := backoff.Sleep(ctx, backoff.Delay(c.Backoff, i)); cerr != nil {
				return nil, errors.Join(cerr, err)
			}
		}
		var keys map[string]ed25519.PublicKey
		var retry bool
		keys, retry, err = c.once(ctx)
		if err == nil {
			return keys, nil
		}
		if !retry {
			break
		}
	}
	return nil, err
}

// once makes one attempt and reports whether a failure is worth retrying.
func (c *JWKSClient) once(ctx context.Context) (keys map[string]ed25519.PublicKey, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
	if err != nil {
		return nil, false, fmt.Errorf("jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := c.HTTP.Do(req)
	if err != nil {
		return nil, true, fmt.Errorf("fetch jwks: %w: %w", errs.ErrUnavailable, err)
	}
	defer func() {
		// Drain so the connection goes back to the pool.
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxJWKS))
		_ = res.Body.Close()
	}()
	if res.StatusCode != http.StatusOK {
		err := fmt.Errorf("fetch jwks: %w: status %d", errs.ErrUnavailable, res.StatusCode)
		return nil, res.StatusCode >= 500, err
	}
	var set JWKS
	if err := json.NewDecoder(io.LimitReader(res.Body, maxJWKS)).Decode(&set); err != nil {
		return nil, false, fmt.Errorf("decode jwks: %w: %w", errs.ErrUnavailable, err)
	}
	keys = make(map[string]ed25519.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		pub, err := k.PublicKey()
		if err != nil {
			continue
		}
		keys[k.Kid] = pub
	}
	return keys, false, nil
}
