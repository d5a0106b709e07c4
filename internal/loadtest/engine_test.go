package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeReel answers the routes the tool drives the way API.md says, with
// videos kept in memory, so that the whole user journey (upload, feed,
// playback, ranges, delete) is exercised whatever the real tree serves.
type fakeReel struct {
	mu      sync.Mutex
	videos  map[string][]byte
	order   []string
	n       int
	ranges  atomic.Int64
	mediaAt string // when set, playback URLs point there instead
	// The web app's sessions: an access cookie is good for pageUses pages
	// (then the page sends the browser through the refresh route); a
	// refresh cookie works once.
	pageUses  int
	access    map[string]int
	refreshes map[string]bool
	rotations atomic.Int64
}

// session makes a fresh pair of session cookies.
func (f *fakeReel) session(w http.ResponseWriter) {
	f.mu.Lock()
	f.n++
	a, rt := fmt.Sprintf("a%d", f.n), fmt.Sprintf("r%d", f.n)
	if f.access == nil {
		f.access, f.refreshes = map[string]int{}, map[string]bool{}
	}
	f.access[a], f.refreshes[rt] = f.pageUses, true
	f.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "reel_access", Value: a, Path: "/", HttpOnly: true})
	http.SetCookie(w, &http.Cookie{Name: "reel_refresh", Value: rt, Path: "/auth/", HttpOnly: true})
}

// page admits a request whose access cookie is still good, and otherwise
// redirects it through the refresh route, as the web app does.
func (f *fakeReel) page(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie("reel_access")
		f.mu.Lock()
		ok := err == nil && f.access[ck.Value] > 0
		if ok {
			f.access[ck.Value]--
		}
		f.mu.Unlock()
		if !ok {
			http.Redirect(w, r, "/auth/refresh?next="+r.URL.Path, http.StatusSeeOther)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		h(w, r)
	}
}

func (f *fakeReel) handler(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer tok-") {
				http.Error(w, "no token", http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("POST /api/v1/auth/register", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"user":{}}`)
	})
	mux.HandleFunc("POST /api/v1/auth/login", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Email string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		_, _ = fmt.Fprintf(w, `{"access_token":"tok-%s","token_type":"Bearer"}`, in.Email)
	})
	mux.HandleFunc("GET /api/v1/videos", auth(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		var items []string
		for i := len(f.order) - 1; i >= 0 && len(items) < 16; i-- {
			items = append(items, fmt.Sprintf(`{"id":%q,"status":"ready"}`, f.order[i]))
		}
		_, _ = fmt.Fprintf(w, `{"items":[%s],"next_cursor":null}`, strings.Join(items, ","))
	}))
	for _, p := range []string{"/api/v1/storage/me", "/api/v1/usage/me", "/api/v1/logs/me", "/api/v1/logs"} {
		mux.HandleFunc("GET "+p, auth(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, `{}`) }))
	}
	mux.HandleFunc("POST /api/v1/videos", auth(func(w http.ResponseWriter, r *http.Request) {
		file, _, err := r.FormFile("video")
		if err != nil || r.FormValue("title") == "" {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(file)
		f.mu.Lock()
		f.n++
		id := fmt.Sprintf("v%d", f.n)
		f.videos[id] = b
		f.order = append(f.order, id)
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_, _ = fmt.Fprintf(w, `{"video":{"id":%q,"status":"ready","size_bytes":%d}}`, id, len(b))
	}))
	mux.HandleFunc("POST /api/v1/videos/{id}/playback", auth(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		_, ok := f.videos[r.PathValue("id")]
		f.mu.Unlock()
		if !ok {
			problem404(w)
			return
		}
		u := "/media/sig/" + r.PathValue("id") + "/video.mp4"
		if f.mediaAt != "" {
			u = f.mediaAt + u
		}
		_, _ = fmt.Fprintf(w, `{"url":%q}`, u)
	}))
	mux.HandleFunc("GET /media/sig/{id}/video.mp4", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		b, ok := f.videos[r.PathValue("id")]
		f.mu.Unlock()
		if !ok {
			problem404(w)
			return
		}
		if r.Header.Get("Range") != "" {
			f.ranges.Add(1)
		}
		http.ServeContent(w, r, "video.mp4", time.Time{}, bytes.NewReader(b))
	})
	mux.HandleFunc("DELETE /api/v1/videos/{id}", auth(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		delete(f.videos, r.PathValue("id"))
		for i, id := range f.order {
			if id == r.PathValue("id") {
				f.order = append(f.order[:i], f.order[i+1:]...)
				break
			}
		}
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Sec-Fetch-Site") != "same-origin" || r.FormValue("email") == "" || r.FormValue("password") == "" {
			http.Error(w, "refused", http.StatusForbidden)
			return
		}
		f.session(w)
		http.Redirect(w, r, r.FormValue("next"), http.StatusSeeOther)
	})
	mux.HandleFunc("GET /auth/refresh", func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie("reel_refresh")
		f.mu.Lock()
		ok := err == nil && f.refreshes[ck.Value]
		if ok {
			delete(f.refreshes, ck.Value)
		}
		f.mu.Unlock()
		if !ok {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		f.rotations.Add(1)
		f.session(w)
		http.Redirect(w, r, r.URL.Query().Get("next"), http.StatusSeeOther)
	})
	mux.HandleFunc("GET /{$}", f.page(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, id := range f.order {
			_, _ = fmt.Fprintf(w, `<a href="/watch/%s">video</a>`, id)
		}
	}))
	mux.HandleFunc("GET /watch/{id}", f.page(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		_, ok := f.videos[r.PathValue("id")]
		f.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
		}
		_, _ = io.WriteString(w, "<video></video>")
	}))
	mux.HandleFunc("GET /mine", f.page(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "<main></main>") }))
	return mux
}

func problem404(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(http.StatusNotFound)
	_, _ = io.WriteString(w, `{"status":404,"code":"not_found"}`)
}

func TestUserJourneyAgainstFake(t *testing.T) {
	f := &fakeReel{videos: map[string][]byte{}}
	srv := httptest.NewServer(f.handler(t))
	defer srv.Close()
	video := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 312 KiB
	res, err := Run(t.Context(), Config{
		BaseURL: srv.URL, Users: 5, Duration: 1500 * time.Millisecond, Think: 5 * time.Millisecond,
		Weights:    Weights{ActFeed: 3, ActUpload: 2, ActPlay: 3, ActDelete: 1, ActStorage: 1, ActUsage: 1, ActLogs: 1, ActAdminLogs: 1},
		AdminEmail: "admin@example.com", AdminPassword: "whatever1", Video: video, Progress: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Totals.Errors != 0 {
		t.Fatalf("errors against a well-behaved server: %+v", res.Routes)
	}
	for _, name := range []string{RouteRegister, RouteLogin, RouteAdminLogin, RouteFeed, RouteUpload, RoutePlayback, RouteMedia, RouteDelete, RouteStorage, RouteUsage, RouteLogs, RouteAdminLogs} {
		if r := res.Route(name); r == nil || r.Requests == 0 {
			t.Fatalf("%s never ran", name)
		}
	}
	// Videos deleted by their owner between a feed read and a click
	// answer 404: counted, but not as errors.
	media, pb := res.Route(RouteMedia), res.Route(RoutePlayback)
	if media.Status[206]+media.Gone != media.Requests || pb.Status[200]+pb.Gone != pb.Requests || media.Status[404] != media.Gone {
		t.Fatalf("media %v (%d gone), playback %v (%d gone)", media.Status, media.Gone, pb.Status, pb.Gone)
	}
	t.Logf("gone: %d playbacks, %d ranges", pb.Gone, media.Gone)
	if media.Status[206] == 0 || media.Bytes < int64(media.Status[206])*mediaRange || f.ranges.Load() != int64(media.Status[206]) {
		t.Fatalf("media: %v, %d bytes, %d ranges served", media.Status, media.Bytes, f.ranges.Load())
	}
	// Two ranges per playback: the start, then a seek; a playback at
	// the very end of the run may not get to its ranges (5 users).
	if ok := pb.Status[200]; media.Requests+media.Gone+2*5 < 2*ok || media.Requests > 2*ok {
		t.Fatalf("%d ranges for %d playbacks", media.Requests, ok)
	}
	if up := res.Route(RouteUpload); up.Status[201] != up.Requests || up.Throughput <= 0 {
		t.Fatalf("upload %+v", up)
	}
	if res.StopReason != "duration" || res.UsersReady != 5 || len(res.Notes) != 0 {
		t.Fatalf("stopped by %s, %d ready, notes %q", res.StopReason, res.UsersReady, res.Notes)
	}
}

// The tool never leaves its target: a playback URL on another host is
// refused and counted, and a redirect is reported, not followed.
func TestOnlyTheTarget(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	f := &fakeReel{videos: map[string][]byte{"v0": []byte("x")}, order: []string{"v0"}, mediaAt: other.URL}
	mux := http.NewServeMux()
	mux.Handle("/", f.handler(t))
	mux.HandleFunc("GET /api/v1/storage/me", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	res, err := Run(t.Context(), Config{BaseURL: srv.URL, Users: 2, Duration: 500 * time.Millisecond, Think: 5 * time.Millisecond,
		Weights: Weights{ActFeed: 1, ActPlay: 1, ActStorage: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if elsewhere.Load() != 0 {
		t.Fatalf("%d requests left the target", elsewhere.Load())
	}
	media, st := res.Route(RouteMedia), res.Route(RouteStorage)
	if media == nil || media.Transport["foreign_url"] != media.Requests || media.Errors != media.Requests {
		t.Fatalf("media %+v", media)
	}
	if st == nil || st.Status[302] != st.Requests || st.Errors != st.Requests {
		t.Fatalf("storage %+v", st)
	}
}

// A request count stops the run by itself, setup included, and nothing is
// sent past it.
func TestRequestCap(t *testing.T) {
	var hits atomic.Int64
	f := &fakeReel{videos: map[string][]byte{}}
	h := f.handler(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	start := time.Now()
	res, err := Run(t.Context(), Config{BaseURL: srv.URL, Users: 4, Requests: 60, Weights: Weights{ActFeed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if res.StopReason != "requests" || res.Totals.Requests != 60 || hits.Load() != 60 || time.Since(start) > 10*time.Second {
		t.Fatalf("stopped by %s after %d requests (%d reached the server)", res.StopReason, res.Totals.Requests, hits.Load())
	}
}

// Cancelling the context (Ctrl-C) ends the run early with its results.
func TestInterrupt(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/videos" {
			<-block // a hung server
		}
		(&fakeReel{videos: map[string][]byte{}}).handler(t).ServeHTTP(w, r)
	}))
	defer srv.Close()
	defer close(block)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, Config{BaseURL: srv.URL, Users: 3, Duration: time.Minute, Weights: Weights{ActFeed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 5*time.Second || res.StopReason != "interrupted" {
		t.Fatalf("stopped by %s after %s", res.StopReason, time.Since(start))
	}
	if feed := res.Route(RouteFeed); feed == nil || feed.Canceled != 3 || feed.Errors != 0 {
		t.Fatalf("feed %+v", feed)
	}
}

// The pages with the web app's cookie session: logged in through the form
// at setup, the feed page's links watched, a session whose access cookie
// expires followed through the refresh route, and none of it an error.
func TestPagesAgainstFake(t *testing.T) {
	f := &fakeReel{videos: map[string][]byte{}, pageUses: 3}
	srv := httptest.NewServer(f.handler(t))
	defer srv.Close()
	video := bytes.Repeat([]byte("0123456789abcdef"), 2000)
	res, err := Run(t.Context(), Config{
		BaseURL: srv.URL, Users: 4, Duration: 1500 * time.Millisecond, Think: 5 * time.Millisecond,
		Weights: Weights{ActUpload: 1, ActDelete: 1, ActPageFeed: 3, ActPageWatch: 3, ActPageMine: 1}, Video: video,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Totals.Errors != 0 {
		t.Fatalf("errors against a well-behaved server: %+v", res.Routes)
	}
	if r := res.Route(RouteWebLogin); r == nil || r.Requests != 4 || r.Status[303] != 4 || r.OK != 4 {
		t.Fatalf("web login: %+v", r)
	}
	for _, name := range []string{RoutePageFeed, RoutePageWatch, RoutePageMine} {
		r := res.Route(name)
		if r == nil || r.Status[200] == 0 || !r.Page || r.Read {
			t.Fatalf("%s: %+v", name, r)
		}
	}
	// Every third page the access cookie is spent: the user went through
	// the refresh route, which rotated the session, and asked again.
	ref := res.Route(RouteWebRefresh)
	if ref == nil || ref.Requests == 0 || ref.Status[303] != ref.Requests || f.rotations.Load() != int64(ref.Requests) {
		t.Fatalf("refresh: %+v, %d rotations", ref, f.rotations.Load())
	}
	// Watch pages of videos deleted meanwhile are gone, not errors.
	w := res.Route(RoutePageWatch)
	if w.Status[200]+w.Status[303]+w.Gone != w.Requests || w.Status[404] != w.Gone {
		t.Fatalf("watch: %v, %d gone", w.Status, w.Gone)
	}
	var html bytes.Buffer
	if err := WriteHTML(&html, res); err != nil || !strings.Contains(html.String(), "50 ms") {
		t.Fatalf("report: %v", err)
	}
}

// A server without the web app: its login answers 404, the users carry on
// with the API and their page actions are skipped, with a note.
func TestPagesNotServed(t *testing.T) {
	f := &fakeReel{videos: map[string][]byte{}}
	mux := http.NewServeMux()
	mux.Handle("/api/", f.handler(t))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	res, err := Run(t.Context(), Config{BaseURL: srv.URL, Users: 2, Duration: 300 * time.Millisecond, Think: 5 * time.Millisecond,
		Weights: Weights{ActFeed: 1, ActPageFeed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if res.UsersReady != 2 || res.Route(RouteFeed) == nil || res.Route(RoutePageFeed) != nil || res.Skipped[string(ActPageFeed)] == 0 {
		t.Fatalf("ready %d, routes %+v, skipped %v", res.UsersReady, res.Routes, res.Skipped)
	}
	if !strings.Contains(strings.Join(res.Notes, "\n"), "web app's login failed") {
		t.Fatalf("notes: %q", res.Notes)
	}
}
