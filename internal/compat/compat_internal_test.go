package compat

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/authn/authntest"
	"github.com/reel-video/reel/internal/videos"
)

// The original client derives the poster with filepath.replace('.mp4',
// '.jpg'), which changes the first ".mp4" only: a token whose MAC starts
// with "mp4" must not offer one before the file name.
func TestMediaURLHasOneMP4(t *testing.T) {
	for _, g := range []videos.Grant{
		{VideoPath: "/media/1700000000.0191e7a4-0000-7000-8000-000000000000.mp4xYz/0191e7a4-0000-7000-8000-000000000001/video.mp4"},
		{VideoPath: "/media/1700000000.0191e7a4-0000-7000-8000-000000000000.mp4xYz/0191e7a4-0000-7000-8000-000000000001/video.webm"},
	} {
		u := mediaURL("https://reel.example.com", g)
		want := "https://reel.example.com/media/1700000000%2E0191e7a4-0000-7000-8000-000000000000%2Emp4xYz/0191e7a4-0000-7000-8000-000000000001/video.mp4"
		if u != want {
			t.Fatalf("mediaURL(%s) = %s", g.VideoPath, u)
		}
		if p := strings.Replace(u, ".mp4", ".jpg", 1); !strings.HasSuffix(p, "/video.jpg") {
			t.Fatalf("poster of %s is %s", u, p)
		}
	}
}

func TestPercentage(t *testing.T) {
	for _, c := range []struct {
		used, limit int64
		want        string
	}{{0, 100, "0.00"}, {1, 3, "33.33"}, {2, 3, "66.67"}, {150, 100, "150.00"}, {5, -1, "0.00"}, {0, 0, "100.00"}} {
		if got := percentage(c.used, c.limit); got != c.want {
			t.Errorf("percentage(%d, %d) = %s, want %s", c.used, c.limit, got, c.want)
		}
	}
}

func TestReelAction(t *testing.T) {
	for in, want := range map[string]string{
		"LOGIN": "LOGIN", "fetch user videos": "FETCH_USER_VIDEOS", "  delete-all!! ": "DELETE_ALL",
		"42": "X_42", "***": "X_", strings.Repeat("A", 80): strings.Repeat("A", 64),
	} {
		if got := reelAction(in); got != want {
			t.Errorf("reelAction(%q) = %q, want %q", in, got, want)
		}
	}
}

// A good token whose keys cannot be fetched (the users service is down
// and this process has never seen them) is not an invalid token: the
// client should retry, not log in again.
func TestAuthUnavailableIs503(t *testing.T) {
	iss := authntest.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/.well-known/jwks.json"
	ln.Close()
	a := auth{v: authn.NewVerifier(authn.NewJWKSClient(dead, nil))}
	h := a.require("Error fetching videos", func(w http.ResponseWriter, r *http.Request, c authn.Caller) error {
		t.Fatal("handler reached without a verified caller")
		return nil
	})
	srv := httptest.NewServer(h)
	defer srv.Close()

	for _, tc := range []struct {
		token string
		want  int
	}{
		{iss.Token(t, authntest.NewUserID(), authn.RoleUser), http.StatusServiceUnavailable},
		{"not-a-jwt", http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header.Set("Authorization", "Bearer "+tc.token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b body
		_ = json.NewDecoder(res.Body).Decode(&b)
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Fatalf("token %.10s…: %d %+v, want %d", tc.token, res.StatusCode, b, tc.want)
		}
		if tc.want == http.StatusServiceUnavailable && (res.Header.Get("Retry-After") == "" || b.Message != msgUnavailable) {
			t.Fatalf("503 without Retry-After or with %q", b.Message)
		}
	}
}
