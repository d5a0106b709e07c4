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
