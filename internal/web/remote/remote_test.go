package remote_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/users"
	"github.com/reel-video/reel/internal/videos"
	"github.com/reel-video/reel/internal/web"
	"github.com/reel-video/reel/internal/web/remote"
)

// fake is a service answering every request with the next canned answer
// and keeping the requests it got.
type fake struct {
	mu      sync.Mutex
	got     []*http.Request
	answers []func(w http.ResponseWriter)
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, r)
	if len(f.answers) == 0 {
		http.Error(w, "no answer", 500)
		return
	}
	a := f.answers[0]
	f.answers = f.answers[1:]
	a(w)
}

func (f *fake) answer(status int, body string, hdr ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers = append(f.answers, func(w http.ResponseWriter) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	})
}

func (f *fake) last(t *testing.T) *http.Request {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) == 0 {
		t.Fatal("no request reached the service")
	}
	return f.got[len(f.got)-1]
}

func setup(t *testing.T) (*remote.Services, *fake) {
	t.Helper()
	f := &fake{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	keys, err := authn.NewServiceKeys("a service key of at least 32 characters", "gateway")
	if err != nil {
		t.Fatal(err)
	}
	urls := map[string]string{}
	for _, s := range []string{"users", "videos", "storage", "usage", "logs"} {
		urls[s] = srv.URL
	}
	svc, err := remote.New(remote.Config{URLs: urls, Internal: users.NewClient(srv.URL, keys, nil)})
	if err != nil {
		t.Fatal(err)
	}
	return svc, f
}

// viewer is a page's context: the signed-in caller, their token and the
// browser's request.
func viewer(id, role string) context.Context {
	ctx := obs.WithRequest(context.Background(), obs.Request{ID: "req-1", IP: "203.0.113.9", UserAgent: "Firefox/140"})
	return web.WithAccessToken(authn.WithCaller(ctx, authn.Caller{UserID: id, Role: role}), "the-token")
}

const me = "0196a0b0-0000-7000-8000-000000000001"

func TestCallsAsTheViewer(t *testing.T) {
	svc, f := setup(t)
	ctx := viewer(me, "user")
	f.answer(200, `{"user":{"id":"`+me+`","email":"ann@example.com","username":"Ann","role":"user"}}`)
	u, err := svc.Users.Get(ctx, me)
	if err != nil || u.Username != "Ann" {
		t.Fatalf("get: %+v %v", u, err)
	}
	req := f.last(t)
	if req.URL.Path != "/api/v1/users/me" || req.Header.Get("Authorization") != "Bearer the-token" ||
		req.Header.Get("X-Forwarded-For") != "203.0.113.9" || req.Header.Get("User-Agent") != "Firefox/140" || req.Header.Get("X-Request-ID") != "req-1" {
		t.Fatalf("request: %s %v", req.URL, req.Header)
	}
	// Someone else's account is asked for on the admin route.
	other := "0196a0b0-0000-7000-8000-000000000002"
	f.answer(200, `{"user":{"id":"`+other+`"}}`)
	if _, err := svc.Users.Get(ctx, other); err != nil || f.last(t).URL.Path != "/api/v1/users/"+other {
		t.Fatalf("other: %v %s", err, f.last(t).URL)
	}
	// Without a viewer in the context nothing is sent.
	n := len(f.got)
	if _, err := svc.Storage.Usage(context.Background(), me); err == nil || len(f.got) != n {
		t.Fatalf("no token: %v, %d requests", err, len(f.got)-n)
	}
	// Login is anonymous.
	f.answer(200, `{"access_token":"a","refresh_token":"r","expires_in":900,"user":{"id":"`+me+`"}}`)
	if tok, err := svc.Users.Login(ctx, "ann@example.com", "pw"); err != nil || tok.AccessToken != "a" || f.last(t).Header.Get("Authorization") != "" {
		t.Fatalf("login: %+v %v %v", tok, err, f.last(t).Header)
	}
}

func TestRefusalsComeBackClassified(t *testing.T) {
	svc, f := setup(t)
	ctx := viewer(me, "user")
	f.answer(422, `{"status":422,"code":"validation_failed","detail":"some fields are not valid","errors":{"username":"must have 1 to 64 characters"}}`,
		"Content-Type", "application/problem+json")
	name := ""
	_, err := svc.Users.UpdateSelf(ctx, authn.Caller{}, users.UpdateMe{Username: &name})
	e, ok := errs.As(err)
	if !ok || !errors.Is(err, users.ErrValidation) || e.Fields["username"] == "" || e.Msg != "some fields are not valid" {
		t.Fatalf("validation: %v", err)
	}
	f.answer(429, `{"status":429,"code":"egress_limit","detail":"today's viewing is used up"}`, "Retry-After", "120")
	_, err = svc.Videos.Play(ctx, authn.Caller{}, videos.Video{ID: "x"})
	if e, ok := errs.As(err); !ok || e.Kind != errs.RateLimited || e.RetryAfter != 2*time.Minute {
		t.Fatalf("rate limited: %v", err)
	}
	// A 500 or an answer that is no problem stays unclassified.
	f.answer(500, `{"status":500,"code":"internal","detail":"an internal error occurred"}`)
	if _, err := svc.Videos.Get(ctx, authn.Caller{}, "x"); errs.KindOf(err) != errs.Internal || err == nil {
		t.Fatalf("500: %v", err)
	}
	f.answer(404, `<html>not found</html>`)
	if _, err := svc.Videos.Get(ctx, authn.Caller{}, "x"); errs.KindOf(err) != errs.Internal || err == nil {
		t.Fatalf("plain 404: %v", err)
	}
}

func TestServiceDownIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ln.Close()
	keys, _ := authn.NewServiceKeys("a service key of at least 32 characters", "gateway")
	svc, err := remote.New(remote.Config{URLs: map[string]string{"users": base, "videos": base, "storage": base, "usage": base, "logs": base},
		Internal: users.NewClient(base, keys, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Usage.Today(viewer(me, "user"), me); !errors.Is(err, errs.ErrUnavailable) {
		t.Fatalf("down: %v", err)
	}
	if _, err := remote.New(remote.Config{URLs: map[string]string{"users": base}, Internal: users.NewClient(base, keys, nil)}); err == nil ||
		!strings.Contains(err.Error(), "REEL_VIDEOS_URL") {
		t.Fatalf("missing URL: %v", err)
	}
}

// Lists ask for signed posters and keep their paths only; playback URLs
// become paths on the pages' own origin.
func TestListsAndPlaybackGivePaths(t *testing.T) {
	svc, f := setup(t)
	ctx := viewer(me, "user")
	f.answer(200, `{"items":[{"id":"v1","title":"Cats","status":"ready","poster_url":"http://videos:8080/media/tok.en/v1/poster.jpg"},{"id":"v2","status":"processing","poster_url":null}],"next_cursor":"abc"}`)
	p, err := svc.Videos.Search(ctx, authn.Caller{}, "cats & dogs", page.Request{After: page.Cursor{T: 5, ID: "v0"}, Limit: 16})
	if err != nil || len(p.Items) != 2 || p.Items[0].PosterPath != "/media/tok.en/v1/poster.jpg" || p.Items[1].PosterPath != "" || *p.NextCursor != "abc" {
		t.Fatalf("search: %+v %v", p, err)
	}
	q := f.last(t).URL.Query()
	if q.Get("posters") != "true" || q.Get("q") != "cats & dogs" || q.Get("limit") != "16" || q.Get("cursor") != (page.Cursor{T: 5, ID: "v0"}).Encode() {
		t.Fatalf("query: %v", q)
	}
	f.answer(200, `{"url":"http://gw.example/media/tok.en/v1/video.mp4","poster_url":"http://gw.example/media/tok.en/v1/poster.jpg","expires_at":"2030-01-01T00:00:00Z",
		"hls_url":null,"storyboard_url":null,"renditions":[]}`)
	g, err := svc.Videos.Play(ctx, authn.Caller{}, videos.Video{ID: "v1"})
	if err != nil || g.VideoPath != "/media/tok.en/v1/video.mp4" || g.PosterPath != "/media/tok.en/v1/poster.jpg" || f.last(t).URL.Path != "/api/v1/videos/v1/playback" ||
		g.HLSPath != "" || g.StoryboardPath != "" || len(g.Renditions) != 0 {
		t.Fatalf("playback: %+v %v", g, err)
	}
	// With adaptive streaming: the master, the storyboard and the
	// renditions, as paths too.
	f.answer(200, `{"url":"http://gw.example/media/tok.en/v1/video.mp4","poster_url":"http://gw.example/media/tok.en/v1/poster.jpg","expires_at":"2030-01-01T00:00:00Z",
		"hls_url":"http://gw.example/media/tok.en/v1/master.m3u8","storyboard_url":"http://gw.example/media/tok.en/v1/storyboard.vtt",
		"renditions":[{"height":240,"width":426,"bandwidth":400000,"url":"http://gw.example/media/tok.en/v1/240.mp4"},{"height":360,"width":640,"bandwidth":800000,"url":"http://gw.example/media/tok.en/v1/360.mp4"}]}`)
	g, err = svc.Videos.Play(ctx, authn.Caller{}, videos.Video{ID: "v1"})
	want := []videos.GrantRendition{{Height: 240, Width: 426, Bandwidth: 400000, Path: "/media/tok.en/v1/240.mp4"}, {Height: 360, Width: 640, Bandwidth: 800000, Path: "/media/tok.en/v1/360.mp4"}}
	if err != nil || g.HLSPath != "/media/tok.en/v1/master.m3u8" || g.StoryboardPath != "/media/tok.en/v1/storyboard.vtt" || !slices.Equal(g.Renditions, want) {
		t.Fatalf("playback with renditions: %+v %v", g, err)
	}
}

// The admin's jobs: the list with its filters, retry and cancel.
func TestJobs(t *testing.T) {
	svc, f := setup(t)
	ctx := viewer(me, "admin")
	f.answer(200, `{"items":[{"id":7,"kind":"transcode","state":"available","video_id":"v1","attempt":0,"max_attempts":5,"errors":[]}],"next_cursor":null}`)
	p, err := svc.Videos.Jobs(ctx, authn.Caller{}, videos.JobFilter{State: "available", Kind: "transcode"}, page.Request{Limit: 50})
	if err != nil || len(p.Items) != 1 || p.Items[0].ID != 7 || *p.Items[0].VideoID != "v1" || p.NextCursor != nil {
		t.Fatalf("jobs: %+v %v", p, err)
	}
	if q := f.last(t).URL.Query(); f.last(t).URL.Path != "/api/v1/jobs" || q.Get("state") != "available" || q.Get("kind") != "transcode" || q.Has("video_id") || q.Get("limit") != "50" {
		t.Fatalf("jobs query: %s", f.last(t).URL)
	}
	f.answer(200, `{"job":{"id":7,"state":"cancelled"}}`)
	if j, err := svc.Videos.CancelJob(ctx, authn.Caller{}, "7"); err != nil || j.State != "cancelled" || f.last(t).Method != "POST" || f.last(t).URL.Path != "/api/v1/jobs/7/cancel" {
		t.Fatalf("cancel: %+v %v %s", j, err, f.last(t).URL)
	}
	f.answer(409, `{"status":409,"code":"job_running","detail":"the job is running; cancel it or wait for it to finish"}`)
	if _, err := svc.Videos.RetryJob(ctx, authn.Caller{}, "7"); errs.KindOf(err) != errs.Conflict || f.last(t).URL.Path != "/api/v1/jobs/7/retry" {
		t.Fatalf("retry: %v %s", err, f.last(t).URL)
	}
}
