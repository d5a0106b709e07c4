package videos_test

import (
	"context"
	"strings"
	"testing"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/page"
)

func TestSearchTitles(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		clip := testVideo(t, 1, 64, 48)
		ann := e.user("user")
		titles := []string{"Cats at play", "CATS asleep", "100% dogs", "snake_case", "Birds"}
		ids := map[string]string{}
		for _, title := range titles {
			ids[title] = e.mustUpload(ann, title, clip)
		}
		trashed := e.mustUpload(ann, "cats in the trash", clip)
		if err := e.svc.Delete(ctx, ann.caller("user"), trashed); err != nil {
			t.Fatal(err)
		}
		search := func(q string, req page.Request) []string {
			t.Helper()
			p, err := e.svc.Search(ctx, q, req)
			if err != nil {
				t.Fatalf("search %q: %v", q, err)
			}
			var out []string
			for _, v := range p.Items {
				out = append(out, v.Title)
			}
			return out
		}
		all := page.Request{Limit: 16}
		for q, want := range map[string]string{
			"cats":      "CATS asleep,Cats at play", // newest first; the trashed one is not in the feed
			"  Cats  ":  "CATS asleep,Cats at play",
			"%":         "100% dogs",
			"_":         "snake_case",
			"e_c":       "snake_case",
			"s_a":       "",
			"zebra":     "",
			"":          "Birds,snake_case,100% dogs,CATS asleep,Cats at play",
			"' OR 1=1 ": "",
		} {
			if got := strings.Join(search(q, all), ","); got != want {
				t.Errorf("search %q: %q, want %q", q, got, want)
			}
		}
		// Pages by cursor, as the feed does.
		p, err := e.svc.Search(ctx, "cats", page.Request{Limit: 1})
		if err != nil || len(p.Items) != 1 || p.NextCursor == nil {
			t.Fatalf("first page: %+v %v", p, err)
		}
		after, _ := page.Decode(*p.NextCursor)
		if got := search("cats", page.Request{After: after, Limit: 1}); len(got) != 1 || got[0] != "Cats at play" {
			t.Fatalf("second page: %v", got)
		}
		for _, bad := range []string{"a\x00b", strings.Repeat("x", 801), "\xff"} {
			if _, err := e.svc.Search(ctx, bad, all); errs.KindOf(err) != errs.Invalid {
				t.Errorf("search %q: %v, want invalid", bad, err)
			}
		}
	})
}

// The feed route searches titles with q, and with posters=true signs each
// item's poster for the caller, as a page of posters needs.
func TestFeedRouteSearchAndPosters(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		clip := testVideo(t, 1, 64, 48)
		ann, bob := e.user("user"), e.user("user")
		cats := e.mustUpload(ann, "Cats at play", clip)
		e.mustUpload(ann, "Birds", clip)

		r := e.do("GET", "/api/v1/videos?q=CATS", bob.token, nil)
		items, _ := r.body["items"].([]any)
		if r.status != 200 || len(items) != 1 || items[0].(map[string]any)["id"] != cats {
			t.Fatalf("search: %d %s", r.status, r.raw)
		}
		if _, ok := items[0].(map[string]any)["poster_url"]; ok {
			t.Fatalf("poster_url without posters=true: %s", r.raw)
		}
		if r := e.do("GET", "/api/v1/videos?q=%00", bob.token, nil); r.status != 400 || r.code() != "invalid_search" {
			t.Fatalf("bad search: %d %s", r.status, r.raw)
		}
		if r := e.do("GET", "/api/v1/videos?posters=maybe", bob.token, nil); r.status != 400 || r.code() != "invalid_query" {
			t.Fatalf("bad posters: %d %s", r.status, r.raw)
		}
		for _, path := range []string{"/api/v1/videos?posters=true", "/api/v1/videos/mine?posters=true"} {
			tok := bob.token
			if strings.Contains(path, "mine") {
				tok = ann.token
			}
			r := e.do("GET", path, tok, nil)
			items, _ := r.body["items"].([]any)
			if r.status != 200 || len(items) != 2 {
				t.Fatalf("%s: %d %s", path, r.status, r.raw)
			}
			for _, it := range items {
				poster, _ := it.(map[string]any)["poster_url"].(string)
				if !strings.HasPrefix(poster, e.srv.URL+"/media/") || !strings.HasSuffix(poster, "/poster.jpg") {
					t.Fatalf("%s: poster_url %q", path, poster)
				}
				if p := e.do("GET", poster, "", nil); p.status != 200 || p.header.Get("Content-Type") != "image/jpeg" {
					t.Fatalf("poster: %d %s", p.status, p.header.Get("Content-Type"))
				}
			}
		}
		// Signing posters is not a playback.
		if n := e.actions()["STREAM_VIDEO:success"]; n != 0 {
			t.Fatalf("%d STREAM_VIDEO events from listings", n)
		}
	})
}
