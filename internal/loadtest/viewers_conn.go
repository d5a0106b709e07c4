package loadtest

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// hlsConn is one viewer's own HTTP/1.1 keep-alive connection, as a player
// keeps one to the server it streams from. Not an http.Transport shared
// by every viewer: its idle pool hands a connection to whichever viewer
// asks next, so thousands of viewers pacing their requests would reach
// the server over the few connections in use at any instant, not over one
// each. And not a Transport per viewer: two goroutines per connection
// beside the viewer's own, where this is one goroutine and one buffer.
//
// It also measures what a Transport cannot say exactly: the time from the
// request written to the first byte of the answer (TTFB).
type hlsConn struct {
	addr    string      // host:port
	host    string      // the Host header
	tls     *tls.Config // nil for http
	timeout time.Duration
	c       net.Conn
	br      *bufio.Reader
	req     []byte        // reused request buffer
	dialed  *atomic.Int64 // counts connections opened, when set
}

func newHLSConn(base *url.URL, timeout time.Duration, insecure bool) *hlsConn {
	h := &hlsConn{host: base.Host, timeout: timeout}
	port := base.Port()
	if port == "" {
		port = "80"
		if base.Scheme == "https" {
			port = "443"
		}
	}
	h.addr = net.JoinHostPort(base.Hostname(), port)
	if base.Scheme == "https" {
		h.tls = &tls.Config{ServerName: base.Hostname(), InsecureSkipVerify: insecure} //nolint:gosec // asked for with -insecure
	}
	return h
}

// fetched is one answer.
type fetched struct {
	status int
	// ttfb runs from the request written to the answer's first byte,
	// total to its last byte.
	ttfb, total time.Duration
	bytes       int64
	body        []byte // when asked to keep it
}

// get asks for target (on the connection's host), with a Range header when
// rng is not "", reads the whole answer and keeps its body (up to
// maxPlaylist) when keep is set. A request on a kept-alive connection the
// server has closed meanwhile goes once more on a new one, as
// http.Transport does for a GET.
func (h *hlsConn) get(ctx context.Context, target *url.URL, rng string, keep bool) (fetched, error) {
	// A context already done would only stop the request when AfterFunc's
	// goroutine got to run, which may be after the answer came.
	if err := ctx.Err(); err != nil {
		return fetched{}, err
	}
	for attempt := 0; ; attempt++ {
		fresh := h.c == nil
		if fresh {
			if err := h.dial(ctx); err != nil {
				return fetched{}, err
			}
		}
		f, sent, err := h.roundTrip(ctx, target, rng, keep)
		if err != nil {
			h.close()
			if !sent && !fresh && attempt == 0 && ctx.Err() == nil {
				continue
			}
		}
		return f, err
	}
}

func (h *hlsConn) dial(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	d := net.Dialer{KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", h.addr)
	if err != nil {
		return err
	}
	if h.tls != nil {
		tc := tls.Client(c, h.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = c.Close()
			return err
		}
		c = tc
	}
	if h.dialed != nil {
		h.dialed.Add(1)
	}
	h.c = c
	if h.br == nil {
		h.br = bufio.NewReaderSize(c, 4<<10)
	} else {
		h.br.Reset(c)
	}
	return nil
}

func (h *hlsConn) close() {
	if h.c != nil {
		_ = h.c.Close()
		h.c = nil
	}
}

// errNoAnswer marks a kept-alive connection that ended before the first
// byte of an answer: the server closed it while idle.
var errNoAnswer = errors.New("connection closed before an answer")

// roundTrip sends one request and reads its answer. sent reports whether
// any byte of an answer came (a request that got none may go again).
func (h *hlsConn) roundTrip(ctx context.Context, target *url.URL, rng string, keep bool) (f fetched, sent bool, err error) {
	// The timeout's deadline is set before the cancel's, which must win.
	if err := h.c.SetDeadline(time.Now().Add(h.timeout)); err != nil {
		return f, false, err
	}
	stop := context.AfterFunc(ctx, func() { _ = h.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	h.req = append(h.req[:0], "GET "...)
	if uri := target.RequestURI(); uri[0] != '/' {
		h.req = append(h.req, '/')
	}
	h.req = append(h.req, target.RequestURI()...)
	h.req = append(h.req, " HTTP/1.1\r\nHost: "...)
	h.req = append(h.req, h.host...)
	h.req = append(h.req, "\r\nUser-Agent: "+userAgent+"\r\n"...)
	if rng != "" {
		h.req = append(h.req, "Range: "...)
		h.req = append(h.req, rng...)
		h.req = append(h.req, "\r\n"...)
	}
	h.req = append(h.req, "\r\n"...)
	start := time.Now()
	if _, err := h.c.Write(h.req); err != nil {
		return f, false, err
	}
	if _, err := h.br.Peek(1); err != nil {
		if errors.Is(err, io.EOF) {
			err = errNoAnswer
		}
		return f, false, err
	}
	f.ttfb = time.Since(start)
	resp, err := http.ReadResponse(h.br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return f, true, err
	}
	f.status = resp.StatusCode
	if keep {
		f.body, err = io.ReadAll(io.LimitReader(resp.Body, maxPlaylist))
		f.bytes = int64(len(f.body))
	}
	if err == nil {
		var n int64
		n, err = io.Copy(io.Discard, resp.Body)
		f.bytes += n
	}
	_ = resp.Body.Close()
	f.total = time.Since(start)
	if err == nil && resp.Close {
		h.close()
	}
	if err == nil && resp.ContentLength >= 0 && f.bytes != resp.ContentLength {
		err = fmt.Errorf("%w: %d of %d bytes", io.ErrUnexpectedEOF, f.bytes, resp.ContentLength)
	}
	return f, true, err
}
