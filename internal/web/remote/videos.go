package remote

import (
	"context"
	"net/http"
	"net/url"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/videos"
	"github.com/reel-video/reel/internal/web"
)

// Videos is the videos service for the pages (web.Videos). The caller
// arguments are not sent: the token in the context is the caller.
type Videos struct{ api *api }

type videoBody struct {
	Video videos.Video `json:"video"`
}

func videoPath(id string) string { return "/api/v1/videos/" + url.PathEscape(id) }

// Search lists the feed, or the feed's videos whose title contains title,
// with posters signed for the viewer.
func (v *Videos) Search(ctx context.Context, _ authn.Caller, title string, req page.Request) (page.Page[web.Listed], error) {
	q := pageQuery(req)
	if title != "" {
		q.Set("q", title)
	}
	return v.list(ctx, "/api/v1/videos", q)
}

// Mine lists the viewer's videos with their posters.
func (v *Videos) Mine(ctx context.Context, _ authn.Caller, req page.Request) (page.Page[web.Listed], error) {
	return v.list(ctx, "/api/v1/videos/mine", pageQuery(req))
}

func (v *Videos) list(ctx context.Context, path string, q url.Values) (page.Page[web.Listed], error) {
	q.Set("posters", "true")
	var p page.Page[videos.ListedVideo]
	if err := v.api.call(ctx, http.MethodGet, path, q, nil, &p); err != nil {
		return page.Page[web.Listed]{}, err
	}
	out := page.Page[web.Listed]{Items: make([]web.Listed, len(p.Items)), NextCursor: p.NextCursor}
	for i, it := range p.Items {
		out.Items[i].Video = it.Video
		if it.PosterURL != nil {
			out.Items[i].PosterPath = localPath(*it.PosterURL)
		}
	}
	return out, nil
}

// Trash lists the viewer's videos in the trash.
func (v *Videos) Trash(ctx context.Context, _ authn.Caller, req page.Request) (page.Page[videos.TrashedVideo], error) {
	var p page.Page[videos.TrashedVideo]
	err := v.api.call(ctx, http.MethodGet, "/api/v1/trash", pageQuery(req), nil, &p)
	return p, err
}

// Get returns a video the viewer may see.
func (v *Videos) Get(ctx context.Context, _ authn.Caller, id string) (videos.Video, error) {
	var out videoBody
	err := v.api.call(ctx, http.MethodGet, videoPath(id), nil, nil, &out)
	return out.Video, err
}

// Update renames a video.
func (v *Videos) Update(ctx context.Context, _ authn.Caller, id string, p videos.Patch) (videos.Video, error) {
	body := struct {
		Title       *string `json:"title,omitempty"`
		Description *string `json:"description,omitempty"`
	}{p.Title, p.Description}
	var out videoBody
	err := v.api.call(ctx, http.MethodPatch, videoPath(id), nil, body, &out)
	return out.Video, err
}

// Delete moves a video to the trash.
func (v *Videos) Delete(ctx context.Context, _ authn.Caller, id string) error {
	return v.api.call(ctx, http.MethodDelete, videoPath(id), nil, nil, nil)
}

// Restore brings a video back from the trash.
func (v *Videos) Restore(ctx context.Context, _ authn.Caller, id string) (videos.Video, error) {
	var out videoBody
	err := v.api.call(ctx, http.MethodPost, videoPath(id)+"/restore", nil, nil, &out)
	return out.Video, err
}

// Play grants the viewer signed media paths for vid (on the pages' own
// origin, where the gateway routes /media).
func (v *Videos) Play(ctx context.Context, _ authn.Caller, vid videos.Video) (videos.Grant, error) {
	var out videos.PlaybackBody
	if err := v.api.call(ctx, http.MethodPost, videoPath(vid.ID)+"/playback", nil, nil, &out); err != nil {
		return videos.Grant{}, err
	}
	g := videos.Grant{VideoPath: localPath(out.URL), PosterPath: localPath(out.PosterURL), ExpiresAt: out.ExpiresAt}
	if out.HLSURL != nil {
		g.HLSPath = localPath(*out.HLSURL)
	}
	if out.StoryboardURL != nil {
		g.StoryboardPath = localPath(*out.StoryboardURL)
	}
	for _, r := range out.Renditions {
		if p := localPath(r.URL); p != "" {
			g.Renditions = append(g.Renditions, videos.GrantRendition{Height: r.Height, Width: r.Width, Bandwidth: r.Bandwidth, Path: p})
		}
	}
	return g, nil
}

// Jobs lists the jobs of the videos service (an admin's).
func (v *Videos) Jobs(ctx context.Context, _ authn.Caller, f videos.JobFilter, req page.Request) (page.Page[videos.Job], error) {
	q := pageQuery(req)
	for k, val := range map[string]string{"state": f.State, "kind": f.Kind, "video_id": f.VideoID} {
		if val != "" {
			q.Set(k, val)
		}
	}
	var out page.Page[videos.Job]
	err := v.api.call(ctx, http.MethodGet, "/api/v1/jobs", q, nil, &out)
	return out, err
}

// RetryJob makes a job that is not running run again (an admin's).
func (v *Videos) RetryJob(ctx context.Context, _ authn.Caller, id string) (videos.Job, error) {
	return v.job(ctx, id, "retry")
}

// CancelJob cancels a job (an admin's).
func (v *Videos) CancelJob(ctx context.Context, _ authn.Caller, id string) (videos.Job, error) {
	return v.job(ctx, id, "cancel")
}

func (v *Videos) job(ctx context.Context, id, action string) (videos.Job, error) {
	var out struct {
		Job videos.Job `json:"job"`
	}
	err := v.api.call(ctx, http.MethodPost, "/api/v1/jobs/"+url.PathEscape(id)+"/"+action, nil, nil, &out)
	return out.Job, err
}
