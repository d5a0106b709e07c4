package web

import (
	"context"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/videos"
)

// LocalVideos is the videos service in this process as the pages use it:
// its lists come with posters signed for the viewer (Sign, which records
// no playback), as the public list routes give them with posters=true.
func LocalVideos(svc *videos.Service) Videos { return localVideos{svc} }

type localVideos struct{ *videos.Service }

func (l localVideos) Search(ctx context.Context, c authn.Caller, title string, req page.Request) (page.Page[Listed], error) {
	p, err := l.Service.Search(ctx, title, req)
	return l.signed(c, p, err)
}

func (l localVideos) Mine(ctx context.Context, c authn.Caller, req page.Request) (page.Page[Listed], error) {
	p, err := l.Service.Mine(ctx, c, req)
	return l.signed(c, p, err)
}

func (l localVideos) signed(c authn.Caller, p page.Page[videos.Video], err error) (page.Page[Listed], error) {
	if err != nil {
		return page.Page[Listed]{}, err
	}
	out := page.Page[Listed]{Items: make([]Listed, len(p.Items)), NextCursor: p.NextCursor}
	for i, v := range p.Items {
		out.Items[i].Video = v
		if g, err := l.Sign(c, v); err == nil {
			out.Items[i].PosterPath = g.PosterPath
		}
	}
	return out, nil
}
