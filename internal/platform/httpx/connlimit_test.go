package httpx_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
)

// One address holds at most max connections; closing one makes room, and
// an exempt address is not counted.
func TestLimitPerAddress(t *testing.T) {
	serve := func(t *testing.T, exempt func(netip.Addr) bool) string {
		raw, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln := httpx.LimitPerAddress(raw, 3, exempt, obs.Discard())
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		return raw.Addr().String()
	}
	// answers reports whether the server answers a request on c.
	answers := func(c net.Conn) bool {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return false
		}
		_, err := bufio.NewReader(c).ReadString('\n')
		return err == nil
	}
	dial := func(t *testing.T, addr string) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	addr := serve(t, nil)
	var held []net.Conn
	for i := range 3 {
		c := dial(t, addr)
		if !answers(c) {
			t.Fatalf("connection %d within the limit was not served", i+1)
		}
		held = append(held, c)
	}
	if answers(dial(t, addr)) {
		t.Fatal("a fourth connection from one address was served")
	}
	held[0].Close()
	// The server notices the close when its read fails: try until then.
	for deadline := time.Now().Add(5 * time.Second); !answers(dial(t, addr)); {
		if time.Now().After(deadline) {
			t.Fatal("no room after a connection closed")
		}
	}

	exemptAddr := serve(t, func(a netip.Addr) bool { return a.IsLoopback() })
	for i := range 5 {
		if !answers(dial(t, exemptAddr)) {
			t.Fatalf("exempt address refused at connection %d", i+1)
		}
	}
}
