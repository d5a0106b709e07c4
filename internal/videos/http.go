package videos

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/page"
)

// Page sizes of the video lists (API.md: default 16, capped at 100).
const (
	defaultPage = 16
	maxPage     = 100
)

// DefaultMediaChunk bounds the answer to an open-ended range request when
// HandlerConfig.MediaChunk is not set.
const DefaultMediaChunk = 8 << 20

// HandlerConfig configures the HTTP side of the service.
type HandlerConfig struct {
	// TrustedProxies are the peers (the gateway, a load balancer) whose
	// X-Forwarded-Host and X-Forwarded-Proto are believed when building
	// absolute playback URLs.
	TrustedProxies []netip.Prefix
	// MediaChunk is the most bytes an open-ended range request
	// ("bytes=N-") is answered with, so a viewer can overshoot the daily
	// egress limit by at most one chunk.
	MediaChunk int64
}

// Handler serves the videos service's routes.
type Handler struct {
	svc  *Service
	auth *authn.Verifier
	cfg  HandlerConfig
}

// NewHandler returns the HTTP handler of svc.
func NewHandler(svc *Service, auth *authn.Verifier, cfg HandlerConfig) *Handler {
	if cfg.MediaChunk <= 0 {
		cfg.MediaChunk = DefaultMediaChunk
	}
	svc.mustServe()
	return &Handler{svc: svc, auth: auth, cfg: cfg}
}

// Routes registers the public routes (the tus routes are TUS.Routes).
func (h *Handler) Routes(r httpx.Router) {
	req := func(f httpx.HandlerFunc) http.Handler { return h.auth.Require(f) }
	r.Handle("POST /api/v1/videos", req(h.upload))
	r.Handle("GET /api/v1/videos", req(h.feed))
	r.Handle("DELETE /api/v1/videos", req(h.deleteAll))
	r.Handle("GET /api/v1/videos/mine", req(h.mine))
	r.Handle("GET /api/v1/videos/{id}", req(h.get))
	r.Handle("PATCH /api/v1/videos/{id}", req(h.update))
	r.Handle("DELETE /api/v1/videos/{id}", req(h.delete))
	r.Handle("POST /api/v1/videos/{id}/restore", req(h.restore))
	r.Handle("POST /api/v1/videos/{id}/playback", req(h.playback))
	r.Handle("GET /api/v1/trash", req(h.trash))
	h.jobRoutes(r)
	// Media URLs carry their own signature: no bearer token, so that they
	// play in a plain <video src>. GET also answers HEAD.
	r.Handle("GET /media/{token}/{id}/{file}", httpx.HandlerFunc(h.media))
}

type videoBody struct {
	Video Video `json:"video"`
}

func caller(r *http.Request) authn.Caller {
	c, _ := authn.CallerFrom(r.Context())
	return c
}

func pageRequest(r *http.Request) (page.Request, error) {
	q := r.URL.Query()
	return page.Parse(q.Get("cursor"), q.Get("limit"), defaultPage, maxPage)
}

// feed lists the feed, or with q the feed's videos whose title contains
// q (Search).
func (h *Handler) feed(w http.ResponseWriter, r *http.Request) error {
	req, err := pageRequest(r)
	if err != nil {
		return err
	}
	p, err := h.svc.Search(r.Context(), r.URL.Query().Get("q"), req)
	if err != nil {
		return err
	}
	return h.list(w, r, p)
}

func (h *Handler) mine(w http.ResponseWriter, r *http.Request) error {
	req, err := pageRequest(r)
	if err != nil {
		return err
	}
	p, err := h.svc.Mine(r.Context(), caller(r), req)
	if err != nil {
		return err
	}
	return h.list(w, r, p)
}

// ListedVideo is a video of a list asked for with posters=true: with its
// poster signed for the caller, as a page of posters shows them.
type ListedVideo struct {
	Video
	// PosterURL is null when the video cannot be played (still
	// processing, failed); until its poster is cut it is a placeholder.
	PosterURL *string `json:"poster_url"`
}

// list answers a page of videos; with posters=true each carries its
// poster's signed URL (Sign: no playback is recorded).
func (h *Handler) list(w http.ResponseWriter, r *http.Request, p page.Page[Video]) error {
	switch r.URL.Query().Get("posters") {
	case "", "false":
		httpx.JSON(w, http.StatusOK, p)
		return nil
	case "true":
	default:
		return httpx.ErrInvalidQuery.WithMsg("posters must be true or false")
	}
	out := page.Page[ListedVideo]{Items: make([]ListedVideo, len(p.Items)), NextCursor: p.NextCursor}
	base, c := BaseURL(r, h.cfg.TrustedProxies), caller(r)
	for i, v := range p.Items {
		out.Items[i].Video = v
		if g, err := h.svc.Sign(c, v); err == nil {
			u := base + g.PosterPath
			out.Items[i].PosterURL = &u
		}
	}
	httpx.JSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) trash(w http.ResponseWriter, r *http.Request) error {
	req, err := pageRequest(r)
	if err != nil {
		return err
	}
	p, err := h.svc.Trash(r.Context(), caller(r), req)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, p)
	return nil
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) error {
	v, err := h.svc.Get(r.Context(), caller(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, videoBody{v})
	return nil
}

func (h *Handler) update(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Title       *string `json:"title"`
		Description *string `json:"description"`
	}
	if err := httpx.Decode(w, r, &in, 0); err != nil {
		return err
	}
	v, err := h.svc.Update(r.Context(), caller(r), r.PathValue("id"), Patch{Title: in.Title, Description: in.Description})
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, videoBody{v})
	return nil
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.Delete(r.Context(), caller(r), r.PathValue("id")); err != nil {
		return err
	}
	httpx.NoContent(w)
	return nil
}

func (h *Handler) deleteAll(w http.ResponseWriter, r *http.Request) error {
	n, err := h.svc.DeleteAll(r.Context(), caller(r))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, map[string]int{"deleted": n})
	return nil
}

func (h *Handler) restore(w http.ResponseWriter, r *http.Request) error {
	v, err := h.svc.Restore(r.Context(), caller(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, videoBody{v})
	return nil
}

// PlaybackBody is the answer to a playback request.
type PlaybackBody struct {
	URL       string    `json:"url"`
	PosterURL string    `json:"poster_url"`
	ExpiresAt time.Time `json:"expires_at"`
	// HLSURL is the master playlist, null until a rendition is done;
	// StoryboardURL the storyboard's WebVTT file, null until it is made.
	HLSURL        *string         `json:"hls_url"`
	StoryboardURL *string         `json:"storyboard_url"`
	Renditions    []RenditionBody `json:"renditions"`
}

// RenditionBody is a rendition in a playback answer.
type RenditionBody struct {
	Height    int    `json:"height"`
	Width     int    `json:"width"`
	Bandwidth int64  `json:"bandwidth"`
	URL       string `json:"url"`
}

func (h *Handler) playback(w http.ResponseWriter, r *http.Request) error {
	g, err := h.svc.Playback(r.Context(), caller(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	base := BaseURL(r, h.cfg.TrustedProxies)
	body := PlaybackBody{URL: base + g.VideoPath, PosterURL: base + g.PosterPath, ExpiresAt: g.ExpiresAt, Renditions: []RenditionBody{}}
	opt := func(path string) *string {
		if path == "" {
			return nil
		}
		u := base + path
		return &u
	}
	body.HLSURL, body.StoryboardURL = opt(g.HLSPath), opt(g.StoryboardPath)
	for _, r := range g.Renditions {
		body.Renditions = append(body.Renditions, RenditionBody{Height: r.Height, Width: r.Width, Bandwidth: r.Bandwidth, URL: base + r.Path})
	}
	httpx.JSON(w, http.StatusOK, body)
	return nil
}

// BaseURL is the scheme and host the client used to reach us
// ("https://videos.example.com"), so that playback URLs are absolute and
// play in a <video src> on a page of another origin. Behind a trusted
// proxy it is what the proxy says the client used; it is "" (and URLs
// stay relative to the request's host) when the host is unusable.
func BaseURL(r *http.Request, trusted []netip.Prefix) string {
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if peerTrusted(r, trusted) {
		if p := firstValue(r.Header.Get("X-Forwarded-Proto")); p == "http" || p == "https" {
			scheme = p
		}
		if fh := firstValue(r.Header.Get("X-Forwarded-Host")); fh != "" {
			host = fh
		}
	}
	if !validHost(host) {
		return ""
	}
	return scheme + "://" + host
}

func firstValue(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.ToLower(strings.TrimSpace(v))
}

func peerTrusted(r *http.Request, trusted []netip.Prefix) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// validHost accepts a host[:port] made of the characters a host name or
// an IP literal may hold, so a forged header cannot inject a path or
// another URL.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}
