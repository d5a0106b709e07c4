package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/outbox"
)

// Client delivers events to a logs service in another process over its
// internal route. It is the outbox.Sink of relays in split mode.
type Client struct {
	url  string
	keys *authn.ServiceKeys
	http *http.Client
}

// clientTimeout bounds one delivery, body included. A relay that times out
// retries with backoff; its claim (a minute) outlives this.
const clientTimeout = 30 * time.Second

// sharedHTTP is the default client of every Client in the process: the
// relays of the services in one process share its warm connections.
var sharedHTTP = sync.OnceValue(func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Relays talk to one host; keep a few connections warm rather than
	// reconnecting per batch.
	t.MaxIdleConnsPerHost = 4
	t.ResponseHeaderTimeout = clientTimeout
	return &http.Client{Timeout: clientTimeout, Transport: t}
})

// NewClient returns a client of the logs service at baseURL (e.g.
// "http://logs:8080"), authenticating with keys. hc may be nil for the
// process's shared client, with timeouts and connection reuse. Ingest is
// tried once: the relay retries with backoff, and the logs service
// ingests idempotently by event id.
func NewClient(baseURL string, keys *authn.ServiceKeys, hc *http.Client) *Client {
	if hc == nil {
		hc = sharedHTTP()
	}
	return &Client{url: strings.TrimRight(baseURL, "/") + "/internal/v1/logs/events", keys: keys, http: hc}
}

// Ingest implements outbox.Sink. A refusal for bad input (400, 413, 422)
// wraps outbox.ErrRejected, so the relay isolates the offending event
// instead of retrying for ever; any other failure is worth retrying.
func (c *Client) Ingest(ctx context.Context, events []outbox.Event) error {
	if len(events) == 0 {
		return nil
	}
	body, err := json.Marshal(Batch{Events: events})
	if err != nil {
		return fmt.Errorf("logs client: encode batch: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("logs client: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if err := c.keys.Authorize(req); err != nil {
		return fmt.Errorf("logs client: %w", err)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("logs client: deliver %d events: %w", len(events), err)
	}
	defer res.Body.Close()
	if res.StatusCode/100 == 2 {
		// Drain so the connection goes back to the pool.
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		return nil
	}
	var p struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	_ = json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&p)
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	err = fmt.Errorf("logs client: deliver %d events: status %d %s: %s", len(events), res.StatusCode, p.Code, p.Detail)
	switch res.StatusCode {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return fmt.Errorf("%w: %w", outbox.ErrRejected, err)
	}
	return err
}
