package compat

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/videos"
)

// VideosOpenAPI describes the videos part of the compatibility surface,
// an OpenAPI 3.1 fragment for the videos module's document.
//
//go:embed openapi_videos.json
var VideosOpenAPI []byte

// VideoService is what the videos part needs of the videos service.
type VideoService interface {
	UploadForm(ctx context.Context, ownerID string, f videos.Form) (videos.Video, error)
	FeedAt(ctx context.Context, offset, limit int) (videos.Numbered, error)
	MineAt(ctx context.Context, c authn.Caller, offset, limit int) (videos.Numbered, error)
	Playback(ctx context.Context, c authn.Caller, id string) (videos.Grant, error)
	Sign(c authn.Caller, v videos.Video) (videos.Grant, error)
	Delete(ctx context.Context, c authn.Caller, id string) error
	DeleteAll(ctx context.Context, c authn.Caller) (int, error)
}

// Limits tells the numbers that the original's upload refusals quote: a
// user's storage quota and daily upload limit, in bytes (-1 unlimited).
type Limits interface {
	StorageQuota(ctx context.Context, userID string) (int64, error)
	DailyUploadLimit(ctx context.Context, userID string) (int64, error)
}

// StaticLimits are the configured defaults (REEL_STORAGE_QUOTA and
// REEL_DAILY_UPLOAD_LIMIT), for processes that do not look up per-user
// overrides.
type StaticLimits struct {
	Quota, DailyUpload int64
}

// StorageQuota implements Limits.
func (l StaticLimits) StorageQuota(context.Context, string) (int64, error) { return l.Quota, nil }

// DailyUploadLimit implements Limits.
func (l StaticLimits) DailyUploadLimit(context.Context, string) (int64, error) {
	return l.DailyUpload, nil
}

// VideosConfig configures the videos part.
type VideosConfig struct {
	// Limits gives the numbers of the refusal messages.
	Limits Limits
	// TrustedProxies are the peers whose X-Forwarded-Host and -Proto are
	// believed when building absolute media URLs (as for /api/v1).
	TrustedProxies []netip.Prefix
}

// videosPage is the original's page size for videos.
const videosPage = 16

// Videos serves the original video service's routes.
type Videos struct {
	svc  VideoService
	auth auth
	cfg  VideosConfig
}

// NewVideos returns the videos part over svc; verifier checks access
// tokens.
func NewVideos(svc VideoService, verifier *authn.Verifier, cfg VideosConfig) *Videos {
	return &Videos{svc: svc, auth: auth{verifier}, cfg: cfg}
}

// Routes registers the routes.
func (v *Videos) Routes(r httpx.Router) {
	r.Handle("POST /api/videos/upload", v.auth.require(msgUploadFailed, v.upload))
	r.Handle("GET /api/videos/stream", v.auth.require(msgFetchVideos, v.feed))
	r.Handle("GET /api/videos/user/{user_id}", v.auth.require(msgFetchVideos, v.user))
	r.Handle("GET /api/videos/stream/{filename}", v.auth.require("Error streaming video", v.stream))
	r.Handle("DELETE /api/videos/delete/{filename}", v.auth.require("Error deleting video", v.delete))
	r.Handle("DELETE /api/videos/delete-all", v.auth.require("Error deleting all videos", v.deleteAll))
}

// Messages of the original video service.
const (
	msgFetchVideos    = "Error fetching videos"
	msgUploaded       = "File uploaded successfully"
	msgNoFile         = "No video file provided"
	msgNoTitle        = "Video title is required"
	msgVideoNotFound  = "Video not found"
	msgNotYourVideos  = "Unauthorized to fetch this user's videos"
	msgDeleted        = "Video deleted successfully (soft delete)"
	msgDeleteRefused  = "Unauthorized or video not found"
	msgAllDeleted     = "All videos deleted successfully (soft delete)"
	msgNotAVideo      = "Unsupported video file"
	msgUploadTooLarge = "Video file too large"
	msgUploadFailed   = "Error uploading video"
)

// videoRow is the original's video row. Filename is reel's video id;
// Filepath a signed media URL ending in .mp4, whose .jpg sibling is the
// poster.
type videoRow struct {
	ID         string     `json:"id"`
	UserID     string     `json:"user_id"`
	Filename   string     `json:"filename"`
	Filepath   string     `json:"filepath"`
	Title      string     `json:"title"`
	UploadedAt time.Time  `json:"uploaded_at"`
	DeletedAt  *time.Time `json:"deleted_at"`
	SizeMb     float64    `json:"size_mb"`
}

type videosAnswer struct {
	Videos []videoRow `json:"videos"`
	Total  int        `json:"total"`
}

// mediaURL turns a grant into the original's filepath: absolute (the
// original client runs on another origin), named video.mp4 whatever the
// container (the media route serves any video.* name with the real type),
// so that its client's filepath.replace('.mp4', '.jpg') lands on
// video.jpg, which the media route serves as the poster. That replace
// changes only the first ".mp4", so the dots of the token are escaped:
// part of it is base64 and could start with "mp4".
func mediaURL(base string, g videos.Grant) string {
	dir, _ := path.Split(g.VideoPath) // "/media/{token}/{id}/"
	parts := strings.Split(strings.Trim(dir, "/"), "/")
	if len(parts) == 3 {
		parts[1] = strings.ReplaceAll(parts[1], ".", "%2E")
		dir = "/" + strings.Join(parts, "/") + "/"
	}
	return base + dir + "video.mp4"
}

func (v *Videos) row(r *http.Request, c authn.Caller, vid videos.Video) (videoRow, error) {
	// Every row carries a playable URL, as the original's did; signing
	// one is not a playback, so it records no STREAM_VIDEO.
	g, err := v.svc.Sign(c, vid)
	if err != nil {
		return videoRow{}, fmt.Errorf("sign video %s: %w", vid.ID, err)
	}
	return videoRow{
		ID: vid.ID, UserID: vid.OwnerID, Filename: vid.ID, Filepath: mediaURL(videos.BaseURL(r, v.cfg.TrustedProxies), g),
		Title: vid.Title, UploadedAt: vid.CreatedAt, DeletedAt: vid.DeletedAt, SizeMb: round2(toMiB(vid.SizeBytes)),
	}, nil
}

// list answers the start-th page of a numbered listing with the total.
// Only ready videos are rows: the original stored a video once its upload
// had succeeded.
func (v *Videos) list(w http.ResponseWriter, r *http.Request, c authn.Caller, at func(ctx context.Context, offset, limit int) (videos.Numbered, error)) error {
	start, err := parseStart(r)
	if err != nil {
		return err
	}
	n, err := at(r.Context(), start, videosPage)
	if err != nil {
		return err
	}
	rows := make([]videoRow, 0, len(n.Items))
	for _, vid := range n.Items {
		row, err := v.row(r, c, vid)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	httpx.JSON(w, http.StatusOK, videosAnswer{Videos: rows, Total: n.Total})
	return nil
}

func (v *Videos) feed(w http.ResponseWriter, r *http.Request, c authn.Caller) error {
	return v.list(w, r, c, v.svc.FeedAt)
}

func (v *Videos) user(w http.ResponseWriter, r *http.Request, c authn.Caller) error {
	if r.PathValue("user_id") != c.UserID {
		return fail(http.StatusForbidden, msgNotYourVideos)
	}
	return v.list(w, r, c, func(ctx context.Context, offset, limit int) (videos.Numbered, error) {
		return v.svc.MineAt(ctx, c, offset, limit)
	})
}

type urlAnswer struct {
	URL string `json:"url"`
}

func (v *Videos) stream(w http.ResponseWriter, r *http.Request, c authn.Caller) error {
	g, err := v.svc.Playback(r.Context(), c, r.PathValue("filename"))
	if errors.Is(err, videos.ErrVideoNotFound) {
		return fail(http.StatusNotFound, msgVideoNotFound)
	}
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, urlAnswer{URL: mediaURL(videos.BaseURL(r, v.cfg.TrustedProxies), g)})
	return nil
}

func (v *Videos) delete(w http.ResponseWriter, r *http.Request, c authn.Caller) error {
	// The original let only the owner delete; reel lets admins too. The
	// caller is passed on without the admin role to keep the original's
	// rule on this route.
	owner := authn.Caller{UserID: c.UserID, Role: authn.RoleUser}
	err := v.svc.Delete(r.Context(), owner, r.PathValue("filename"))
	if errors.Is(err, videos.ErrVideoNotFound) {
		return fail(http.StatusForbidden, msgDeleteRefused)
	}
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, body{Message: msgDeleted})
	return nil
}

func (v *Videos) deleteAll(w http.ResponseWriter, r *http.Request, c authn.Caller) error {
	if _, err := v.svc.DeleteAll(r.Context(), c); err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, body{Message: msgAllDeleted})
	return nil
}

type uploadAnswer struct {
	Message string   `json:"message"`
	File    videoRow `json:"file"`
}

// upload is the original's multipart upload (a "video" file part and a
// "title" field, in either order), received by the same
// videos.Service.UploadForm as reel's own: admitted by its declared length
// before the body is read, the file spooled, never held in memory. Only
// the answers are the original's.
func (v *Videos) upload(w http.ResponseWriter, r *http.Request, c authn.Caller) error {
	ctx := r.Context()
	vid, err := v.svc.UploadForm(ctx, c.UserID, videos.Form{
		ContentType: r.Header.Get("Content-Type"), Length: r.ContentLength, Body: r.Body, Via: "compat",
	})
	if err != nil {
		// The rest of the body may be unread and is not worth draining.
		w.Header().Set("Connection", "close")
		return v.uploadRefusal(ctx, c, err)
	}
	row, err := v.row(r, c, vid)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, uploadAnswer{Message: msgUploaded, File: row})
	return nil
}

// uploadRefusal translates the refusals of an upload into the original's
// messages, which quote the user's limits in MiB. The original checked
// the file first, then the title.
func (v *Videos) uploadRefusal(ctx context.Context, c authn.Caller, err error) error {
	e, ok := errs.As(err)
	if !ok {
		return err
	}
	switch e.Code {
	case "quota_exceeded":
		return fail(http.StatusBadRequest, "Exceeding total storage limit"+v.limitMiB(ctx, c, Limits.StorageQuota, " of %sMB"))
	case "daily_limit_reached":
		return fail(http.StatusBadRequest, "Exceeding daily bandwidth limit"+v.limitMiB(ctx, c, Limits.DailyUploadLimit, " of %s MB"))
	}
	switch {
	case errors.Is(e, videos.ErrUploadContentType):
		// What the original's multer saw as a request without a file.
		return fail(http.StatusBadRequest, msgNoFile)
	case errors.Is(e, videos.ErrLengthRequired):
		return fail(http.StatusLengthRequired, "Content-Length required: the upload is admitted by its declared size")
	case errors.Is(e, videos.ErrValidation) && errors.Is(err, videos.ErrMissingVideo):
		return fail(http.StatusBadRequest, msgNoFile)
	case errors.Is(e, videos.ErrValidation) && errors.Is(err, videos.ErrMissingTitle):
		return fail(http.StatusBadRequest, msgNoTitle)
	case errors.Is(e, videos.ErrValidation):
		return failWhy(http.StatusBadRequest, msgInvalidInput, fieldErrors(err))
	case errors.Is(e, videos.ErrNotVideo):
		return failWhy(http.StatusUnsupportedMediaType, msgNotAVideo, e.Msg)
	case errors.Is(e, videos.ErrUploadTooLarge):
		return failWhy(http.StatusRequestEntityTooLarge, msgUploadTooLarge, e.Msg)
	case errors.Is(e, videos.ErrIncomplete), errors.Is(e, videos.ErrMalformedUpload):
		return failWhy(http.StatusBadRequest, msgUploadFailed, e.Msg)
	}
	return err
}

// limitMiB renders a user's limit in MiB into format as the original's
// messages quote it: "50" for the default, two decimals when it is not a
// whole number. When the limit cannot be told, the number is left out:
// the refusal stands either way.
func (v *Videos) limitMiB(ctx context.Context, c authn.Caller, lookup func(Limits, context.Context, string) (int64, error), format string) string {
	if v.cfg.Limits == nil {
		return ""
	}
	b, err := lookup(v.cfg.Limits, ctx, c.UserID)
	if err != nil || b < 0 {
		return ""
	}
	m := round2(toMiB(b))
	if m == float64(int64(m)) {
		return fmt.Sprintf(format, fmt.Sprintf("%d", int64(m)))
	}
	return fmt.Sprintf(format, fmt.Sprintf("%.2f", m))
}
