package authn

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// JWKSClient is a KeySource that fetches the users service's key set over
// HTTP and caches it. Keys stay cached when the users service is down, so
// existing tokens keep working while it restarts; an unknown kid triggers a
// refetch, at most once per MinRefresh so forged kids cannot make us hammer
// the users service.
type JWKSClient struct {
	URL        string
	HTTP       *http.Client
	MinRefresh time.Duration
	MaxAge     time.Duration

	mu      sync.Mutex
	keys    map[string]ed25519.PublicKey
	fetched time.Time
	tried   time.Time
}

// NewJWKSClient returns a client for the key set at url.
func NewJWKSClient(url string, hc *http.Client) *JWKSClient {
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	return &JWKSClient{URL: url, HTTP: hc, MinRefresh: 10 * time.Second, MaxAge: 5 * time.Minute}
}

// PublicKey implements KeySource.
func (c *JWKSClient) PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.keys[kid]
	stale := time.Since(c.fetched) > c.MaxAge
	if ok && !stale {
		return k, nil
	}
	if time.Since(c.tried) >= c.MinRefresh || c.keys == nil {
		c.tried = time.Now()
		if keys, err := c.fetch(ctx); err == nil {
			c.keys, c.fetched = keys, time.Now()
		} else if c.keys == nil {
			return nil, err
		}
		k, ok = c.keys[kid]
	}
	if !ok {
		return nil, fmt.Errorf("kid %q: %w", kid, ErrUnknownKey)
	}
	return k, nil
}

func (c *JWKSClient) fetch(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks request: %w", err)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch jwks: status %d", resp.StatusCode)
	}
	var set JWKS
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("decode jwks: %w", err)
	}
	keys := make(map[string]ed25519.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		pub, err := k.PublicKey()
		if err != nil {
			continue
		}
		keys[k.Kid] = pub
	}
	return keys, nil
}
