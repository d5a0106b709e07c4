// Package obs carries observability state through a context: the request's
// logger and metadata (request id, client address, user agent). It lives
// outside httpx so that business logic can read request metadata, for example
// to fill activity events, without importing HTTP.
package obs

import (
	"context"
	"log/slog"
)

type ctxKey int

const (
	loggerKey ctxKey = iota
	requestKey
)

// Request is what a service may know about the request it is serving.
type Request struct {
	ID        string // request id, accepted from X-Request-ID or generated
	IP        string // client address, X-Forwarded-For honoured only from trusted proxies
	UserAgent string
}

// WithRequest returns a context carrying request metadata.
func WithRequest(ctx context.Context, r Request) context.Context {
	return context.WithValue(ctx, requestKey, r)
}

// RequestFrom returns the request metadata in ctx (zero when there is none,
// e.g. in a background job).
func RequestFrom(ctx context.Context) Request {
	r, _ := ctx.Value(requestKey).(Request)
	return r
}

// WithLogger returns a context carrying a logger.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey, l)
}

// Logger returns the context's logger, or fallback when there is none,
// with the id of the request in ctx, if any. The request's logger is made
// here, when something is logged, rather than for every request: most
// requests log nothing but their access line.
func Logger(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	l, ok := ctx.Value(loggerKey).(*slog.Logger)
	if !ok {
		l = fallback
	}
	if id := RequestFrom(ctx).ID; id != "" {
		return l.With("request_id", id)
	}
	return l
}

// Discard is a logger that drops everything, for tests.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
