package httpx_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/httpx"
)

// slowServer serves handler behind Wrap with a body rate of 8 bytes per
// 300 ms.
func slowServer(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	rate := httpx.BodyRate{MinBytes: 8, Window: 300 * time.Millisecond}
	srv := httptest.NewServer(httpx.Wrap(handler, httpx.MiddlewareConfig{BodyRate: rate}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// send writes a POST with a body of n bytes, one byte every gap, and
// returns the status line the server answered (or "closed").
func send(t *testing.T, addr string, n int, gap time.Duration) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second)) // a hung test fails rather than waits
	fmt.Fprintf(c, "POST /x HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, n)
	go func() {
		for range n {
			if _, err := c.Write([]byte(" ")); err != nil {
				return
			}
			time.Sleep(gap)
		}
	}()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "closed"
	}
	return strings.TrimSpace(line)
}

// A body trickled below the rate is cut off with 408 and the connection
// closed; the same body at speed is read whole.
func TestSlowBodyCutOff(t *testing.T) {
	addr := slowServer(t, func(w http.ResponseWriter, r *http.Request) {
		var v any
		if err := httpx.Decode(w, r, &v, 0); err != nil {
			httpx.Error(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	if got := send(t, addr, 40, 100*time.Millisecond); got != "HTTP/1.1 408 Request Timeout" {
		t.Fatalf("a trickled body: %q, want 408", got)
	}
	// Fast: the body is all spaces, so Decode finds no JSON value (400),
	// which shows it was read to its end rather than cut.
	if got := send(t, addr, 40, 0); got != "HTTP/1.1 400 Bad Request" {
		t.Fatalf("a body at speed: %q, want 400 from Decode", got)
	}
}

// Time the handler spends between reads is not charged to the client, and
// once the body is read the handler may take as long as it needs: the
// limit does not cancel its context.
func TestSlowBodySparesTheHandler(t *testing.T) {
	addr := slowServer(t, func(w http.ResponseWriter, r *http.Request) {
		half := make([]byte, 20)
		if _, err := io.ReadFull(r.Body, half); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		time.Sleep(700 * time.Millisecond) // two windows of the handler's own work
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		time.Sleep(700 * time.Millisecond)
		if err := r.Context().Err(); err != nil {
			http.Error(w, "context cancelled after the body", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	if got := send(t, addr, 40, 0); got != "HTTP/1.1 204 No Content" {
		t.Fatalf("got %q, want 204", got)
	}
}

func TestRequestIDsAreRestricted(t *testing.T) {
	var seen string
	srv := httptest.NewServer(httpx.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Get("X-Request-ID")
	}), httpx.MiddlewareConfig{}))
	defer srv.Close()
	for id, kept := range map[string]bool{
		"abc-123_x.Y":           true,
		strings.Repeat("a", 64): true,
		strings.Repeat("a", 65): false,
		"with space":            false,
		"zero\u200bwidth":       false,
		"quote\"d":              false,
		"semi;colon":            false,
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header.Set("X-Request-ID", id)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if (seen == id) != kept || res.Header.Get("X-Request-ID") != seen {
			t.Errorf("id %q: handler saw %q, answer %q; kept=%v wanted", id, seen, res.Header.Get("X-Request-ID"), kept)
		}
	}
}
