package httpx_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
)

// TestServeCutsOffStalledRequests: a request whose body stops coming
// outlives the drain; its connection is then closed, so its handler fails
// and cleans up before Serve returns, not after the process is gone.
func TestServeCutsOffStalledRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var cleaned atomic.Bool
	var readErr atomic.Value
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		_, err := io.Copy(io.Discard, r.Body)
		readErr.Store(fmt.Sprint(err))
		time.Sleep(100 * time.Millisecond) // a clean-up that takes a while
		cleaned.Store(true)
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- httpx.Serve(ctx, ln, h, httpx.ServerConfig{ShutdownTimeout: 200 * time.Millisecond, CloseGrace: 5 * time.Second}, obs.Discard())
	}()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nsome bytes")
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached its handler")
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("the cut-off request cleaned up within the grace, yet Serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if !cleaned.Load() {
		t.Fatal("Serve returned before the cut-off handler had cleaned up")
	}
	if s, _ := readErr.Load().(string); s == "<nil>" || s == "" {
		t.Fatalf("the handler read its body to the end: %q", s)
	}
}

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
