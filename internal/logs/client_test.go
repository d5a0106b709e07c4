package logs_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/logs"
	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/outbox"
)

// TestClientOneAttemptReusedConnections: Ingest tries once (the relay
// retries with backoff), and every answer, refusals and failures with a
// body included, is read to the end so that deliveries share one kept-alive
// connection, across clients too.
func TestClientOneAttemptReusedConnections(t *testing.T) {
	var hits, conns atomic.Int64
	answers := []int{http.StatusServiceUnavailable, http.StatusUnprocessableEntity, http.StatusOK}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := answers[int(hits.Add(1)-1)%len(answers)]
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(st)
		_, _ = w.Write([]byte(`{"code":"x","detail":"` + strings.Repeat("x", 8<<10) + `"}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	keys, _ := authn.NewServiceKeys(serviceKey, "users")
	e := ev(uuid.NewString(), "LOGIN", outbox.Success, "client", base)
	for i := range 9 {
		c := logs.NewClient(srv.URL, keys, nil) // a relay per service, one pool
		err := c.Ingest(t.Context(), []outbox.Event{e})
		switch answers[i%len(answers)] {
		case http.StatusServiceUnavailable:
			if err == nil || errors.Is(err, outbox.ErrRejected) {
				t.Fatalf("503: %v, want a retryable error", err)
			}
		case http.StatusUnprocessableEntity:
			if !errors.Is(err, outbox.ErrRejected) {
				t.Fatalf("422: %v, want ErrRejected", err)
			}
		default:
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if hits.Load() != 9 || conns.Load() != 1 {
		t.Fatalf("9 deliveries made %d requests over %d connections, want 9 over 1", hits.Load(), conns.Load())
	}
}
