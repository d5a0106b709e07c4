package httpx

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/obs"
)

// ErrSlowBody is the answer to a request whose body arrives more slowly
// than the configured minimum rate (408).
var ErrSlowBody = errs.New(errs.Timeout, "request_timeout", "the request body arrived too slowly")

// BodyRate is the slowest a request body may arrive: at least MinBytes in
// every Window the server spends waiting for it. Without it one address
// could hold connections open for ever by trickling bytes (slowloris).
// The zero value sets no limit.
type BodyRate struct {
	MinBytes int64
	Window   time.Duration
}

func (b BodyRate) enabled() bool { return b.MinBytes > 0 && b.Window > 0 }

// limitBody makes r's body fail with ErrSlowBody when it arrives more
// slowly than rate. The limit is a read deadline on the connection, moved
// on each time the body has delivered MinBytes; time the handler spends
// between reads (a database call, a write to disk) is not the client's
// and starts a fresh window.
func limitBody(w http.ResponseWriter, r *http.Request, rate BodyRate, log *slog.Logger) {
	if !rate.enabled() || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return
	}
	r.Body = &rateBody{ReadCloser: r.Body, rc: http.NewResponseController(w), rate: rate, req: r, log: log}
}

type rateBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	rate  BodyRate
	req   *http.Request
	log   *slog.Logger
	start time.Time // when the current window began
	got   int64     // bytes read in the current window
	armed bool      // a deadline is set on the connection
	cut   bool
}

func (b *rateBody) Read(p []byte) (int, error) {
	if b.cut {
		return 0, ErrSlowBody
	}
	now := time.Now()
	if !b.armed || b.got >= b.rate.MinBytes || now.Sub(b.start) > b.rate.Window {
		b.start, b.got = now, 0
		if err := b.rc.SetReadDeadline(now.Add(b.rate.Window)); err == nil {
			b.armed = true
		}
	}
	n, err := b.ReadCloser.Read(p)
	b.got += int64(n)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			b.cut = true
			obs.Logger(b.req.Context(), b.log).LogAttrs(b.req.Context(), slog.LevelWarn, "request body too slow: cut off",
				slog.Int64("min_bytes", b.rate.MinBytes), slog.Duration("window", b.rate.Window))
			return n, ErrSlowBody
		}
		b.disarm()
	}
	return n, err
}

func (b *rateBody) Close() error {
	b.disarm()
	return b.ReadCloser.Close()
}

// disarm clears the deadline once the body is done: net/http goes on
// reading the connection in the background (to notice a client going
// away), and a deadline left behind would cancel the handler's context.
func (b *rateBody) disarm() {
	if b.armed {
		b.armed = false
		_ = b.rc.SetReadDeadline(time.Time{})
	}
}
