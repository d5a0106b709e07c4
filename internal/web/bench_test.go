package web_test

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkPages renders the pages of the load test's mix (feed, watch,
// my videos) over a real socket against an all-in-one reel on SQLite,
// with a cookie session: the server-rendered path as a browser meets it,
// services and database included. Streaming is off so that no transcode
// competes with the measurement.
//
//	go test -run '^$' -bench BenchmarkPages -benchmem ./internal/web/
func BenchmarkPages(b *testing.B) {
	r := startReel(b, map[string]string{"REEL_STREAMING": "off", "REEL_TRANSCODE_WORKERS": "0"})
	annTok, _ := r.account("ann@example.com", "Ann")
	bobTok, _ := r.account("bob@example.com", "Bob")
	var watch string
	for i := range pageSize {
		tok := annTok
		if i%2 == 1 {
			tok = bobTok
		}
		id := r.upload(tok, "Clip", clip(b))
		if tok == bobTok {
			watch = id // someone else's video: the owner's name is looked up
		}
	}
	ann := r.browser()
	ann.login("ann@example.com", "correct horse")
	for _, p := range []struct{ name, path string }{{"feed", "/"}, {"watch", "/watch/" + watch}, {"mine", "/mine"}} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				// A request each time: the client's jar adds its cookies to it.
				req, err := http.NewRequest("GET", r.base+p.path, nil)
				if err != nil {
					b.Fatal(err)
				}
				res, err := ann.c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, res.Body)
				_ = res.Body.Close()
				if res.StatusCode != 200 {
					b.Fatalf("%s: %d", p.path, res.StatusCode)
				}
				b.SetBytes(n)
			}
		})
	}
}

// pageSize is how many videos a page of the feed lists.
const pageSize = 16
