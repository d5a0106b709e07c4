package gateway_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/gateway"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
)

// blackhole accepts connections and never answers: a replica cut off the
// network after its connection was made, as seen from the gateway.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

func startWith(t *testing.T, bases map[string]string, opts ...gateway.Option) (*httptest.Server, *gateway.Gateway) {
	t.Helper()
	g, err := gateway.New(bases, nil, obs.Discard(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	g.Register(mux)
	srv := httptest.NewServer(httpx.Wrap(mux, httpx.MiddlewareConfig{Logger: obs.Discard()}))
	t.Cleanup(srv.Close)
	return srv, g
}

// With a service's replicas listed, reads never fail while one is down
// (refusing) or cut off (silent): each GET is tried on the next replica.
// A POST whose body went out is not sent twice; one that could not
// connect is.
func TestReplicasFailOver(t *testing.T) {
	bases := map[string]string{}
	for _, s := range gateway.Services() {
		bases[s] = echo(t, s).URL
	}
	live := echo(t, "videos-b")
	bases["videos"] = strings.Join([]string{deadURL(t), blackhole(t), live.URL}, ", ")
	gw, g := startWith(t, bases, gateway.WithTryTimeout(2*time.Second))

	for i := range 12 {
		req, _ := http.NewRequest("GET", gw.URL+"/api/v1/videos/abc", nil)
		st, _, body := get(t, req)
		if st != 200 || body["service"] != "videos-b" {
			t.Fatalf("GET %d: %d %v", i, st, body)
		}
	}
	// Every replica down but one: readiness holds.
	for name, check := range g.Checks() {
		if err := check(context.Background()); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// A body-less POST is sent again when the connection could not be
	// made; after the probe has ejected the dead replicas, so is every
	// other request (none reaches them).
	if err := g.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		res, err := http.Post(gw.URL+"/api/v1/videos/abc/playback", "application/json", strings.NewReader(`{"x":1}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(b), "videos-b") {
			t.Fatalf("POST %d after the probe: %d %s", i, res.StatusCode, b)
		}
	}
}

// A POST with a body that reached a replica which then answers nothing is
// not sent to another: the client gets 503 (after the try timeout only
// for reads) and decides.
func TestBodyNotSentTwice(t *testing.T) {
	bases := map[string]string{}
	for _, s := range gateway.Services() {
		bases[s] = echo(t, s).URL
	}
	var hits sync.WaitGroup
	hits.Add(1)
	var once sync.Once
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		once.Do(hits.Done)
		// Drop the connection without an answer.
		hj, _ := w.(http.Hijacker)
		c, _, _ := hj.Hijack()
		c.Close()
	}))
	t.Cleanup(refuse.Close)
	counted := echo(t, "videos-b")
	bases["videos"] = refuse.URL + "," + counted.URL
	gw, _ := startWith(t, bases)
	// Round-robin: one of two POSTs goes first to the dropping replica.
	saw503 := false
	for range 2 {
		res, err := http.Post(gw.URL+"/api/v1/videos", "application/octet-stream", strings.NewReader("payload"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == 503 {
			saw503 = true
		} else if res.StatusCode != 200 {
			t.Fatalf("POST: %d", res.StatusCode)
		}
	}
	hits.Wait()
	if !saw503 {
		t.Fatal("a POST whose body reached a replica was sent to another")
	}
}

func TestReplicaURLsChecked(t *testing.T) {
	bases := map[string]string{}
	for _, s := range gateway.Services() {
		bases[s] = "http://" + s
	}
	bases["videos"] = "http://a/x,http://b/y"
	if _, err := gateway.New(bases, nil, obs.Discard()); err == nil || !strings.Contains(err.Error(), "REEL_VIDEOS_URL") {
		t.Fatalf("%v", err)
	}
	bases["videos"] = "http://a,ftp://b"
	if _, err := gateway.New(bases, nil, obs.Discard()); err == nil || !strings.Contains(err.Error(), "REEL_VIDEOS_URL") {
		t.Fatalf("%v", err)
	}
}

// An upload whose first replica cannot be reached goes to the next whole:
// no byte of its body was read.
func TestBodyFailsOverWhenUnconnected(t *testing.T) {
	bases := map[string]string{}
	for _, s := range gateway.Services() {
		bases[s] = echo(t, s).URL
	}
	bases["videos"] = deadURL(t) + "," + deadURL(t) + "," + echo(t, "videos-b").URL
	gw, _ := startWith(t, bases)
	payload := strings.Repeat("reel", 1<<16)
	for i := range 4 {
		res, err := http.Post(gw.URL+"/api/v1/videos", "application/octet-stream", strings.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(b), `"bytes":262144`) || !strings.Contains(string(b), "videos-b") {
			t.Fatalf("POST %d: %d %s", i, res.StatusCode, b)
		}
	}
}
