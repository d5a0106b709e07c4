package videos

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// tusd builds an upload's Location from the forwarding headers, so only a
// trusted proxy's are passed on to it.
func TestTUSForwardedHeadersOnlyFromTrustedPeers(t *testing.T) {
	tus := &TUS{trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	var seen http.Header
	h := tus.forwarded(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = r.Header.Clone() }))
	for peer, kept := range map[string]bool{"10.1.2.3:4000": true, "203.0.113.9:4000": false, "[::1]:4000": false} {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/uploads", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-Host", "evil.example")
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("Forwarded", "host=evil.example;proto=https")
		h.ServeHTTP(httptest.NewRecorder(), r)
		for _, name := range []string{"X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
			if got := seen.Get(name) != ""; got != kept {
				t.Errorf("peer %s: %s passed on = %v, want %v", peer, name, got, kept)
			}
		}
	}
}
