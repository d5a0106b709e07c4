package httpx_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
)

// TestServeCutsOffStalledRequests: a request whose body stops coming
// outlives the drain; its connection is then closed, so its handler fails
// and cleans up before Serve returns, not after the process is gone. A
// clean-up that outlasts CloseGrace makes Serve's error.
//
// It runs in a synctest bubble, whose clock moves only when every
// goroutine waits, so the drain and the grace take their real lengths at
// no cost and the clean-up can sit on either side of the grace. The
// connection is a net.Pipe (real sockets do not block durably in a
// bubble); TestServeDrains runs over a real socket.
func TestServeCutsOffStalledRequests(t *testing.T) {
	const drain, grace = 30 * time.Second, 5 * time.Second
	for _, c := range []struct {
		name    string
		cleanup time.Duration
		cutOff  bool // still running when the grace ends
	}{
		{"clean-up within the grace", 4 * time.Second, false},
		{"clean-up past the grace", 6 * time.Second, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ln := newPipeListener()
				started := make(chan struct{})
				var cleaned atomic.Bool
				readErr := make(chan error, 1)
				h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					close(started)
					_, err := io.Copy(io.Discard, r.Body)
					readErr <- err
					time.Sleep(c.cleanup)
					cleaned.Store(true)
				})
				ctx, cancel := context.WithCancel(t.Context())
				served := make(chan error, 1)
				go func() {
					served <- httpx.Serve(ctx, ln, h, httpx.ServerConfig{ShutdownTimeout: drain, CloseGrace: grace}, obs.Discard())
				}()
				conn := ln.dial()
				defer conn.Close()
				fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nsome bytes")
				<-started
				cancel()
				stop := time.Now()
				err := <-served
				took := time.Since(stop)
				if took < drain {
					t.Errorf("Serve returned %v after the stop, before the drain of %v ended", took, drain)
				}
				switch {
				case c.cutOff:
					if err == nil || cleaned.Load() || took != drain+grace {
						t.Errorf("Serve = %v after %v, cleaned %v; want an error once the grace is over (%v), before the clean-up", err, took, cleaned.Load(), drain+grace)
					}
				case err != nil:
					t.Errorf("the cut-off request cleaned up within the grace, yet Serve returned %v", err)
				case !cleaned.Load():
					t.Error("Serve returned before the cut-off handler had cleaned up")
				case took >= drain+grace:
					t.Errorf("Serve waited out the whole grace (%v) although the handler was done", took)
				}
				// The bubble ends only once its goroutines have: the
				// handler's clean-up, net/http's lingering close.
				time.Sleep(time.Minute)
				if err := <-readErr; err == nil {
					t.Error("the handler read its body to the end")
				}
			})
		})
	}
}

// pipeListener is a net.Listener whose connections are net.Pipes, which
// block durably in a synctest bubble where real sockets do not.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// dial connects to the listener and returns the client's end.
func (l *pipeListener) dial() net.Conn {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
	case <-l.done:
		server.Close()
	}
	return client
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// TestServeDrains: a request that finishes within the drain is answered
// and Serve returns cleanly.
func TestServeDrains(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(200 * time.Millisecond)
		_, _ = io.WriteString(w, "done")
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- httpx.Serve(ctx, ln, h, httpx.ServerConfig{ShutdownTimeout: 10 * time.Second}, obs.Discard())
	}()
	got := make(chan string, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		got <- string(b)
	}()
	<-started
	cancel()
	if s := <-got; s != "done" {
		t.Fatalf("answer %q", s)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}
