package videos

import (
	"errors"
	"net/http"

	"github.com/reel-video/reel/internal/platform/httpx"
)

// upload is POST /api/v1/videos: a multipart upload read as a stream by
// Service.UploadForm, which admits the declared length before it reads a
// byte of the body and spools the video part, never holding it in memory.
func (h *Handler) upload(w http.ResponseWriter, r *http.Request) error {
	v, err := h.svc.UploadForm(r.Context(), caller(r).UserID, Form{
		ContentType: r.Header.Get("Content-Type"), Length: r.ContentLength, Body: r.Body, Via: "multipart",
	})
	if err != nil {
		// The rest of the body may be unread and is not worth draining.
		w.Header().Set("Connection", "close")
	}
	if errors.Is(err, ErrLengthRequired) {
		httpx.WriteProblem(w, httpx.Problem{
			Type: "about:blank", Title: http.StatusText(http.StatusLengthRequired), Status: http.StatusLengthRequired,
			Code: "length_required", Detail: ErrLengthRequired.Msg,
		})
		return nil
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/videos/"+v.ID)
	httpx.JSON(w, http.StatusCreated, videoBody{v})
	return nil
}
