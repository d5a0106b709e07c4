package videos

import (
	"net/http"

	"github.com/reel-video/reel/internal/platform/httpx"
)

// jobRoutes registers the admin jobs API.
func (h *Handler) jobRoutes(r httpx.Router) {
	admin := func(f httpx.HandlerFunc) http.Handler { return h.auth.RequireAdmin(f) }
	r.Handle("GET /api/v1/jobs", admin(h.jobs))
	r.Handle("POST /api/v1/jobs/{id}/retry", admin(h.retryJob))
	r.Handle("POST /api/v1/jobs/{id}/cancel", admin(h.cancelJob))
}

type jobBody struct {
	Job Job `json:"job"`
}

func (h *Handler) jobs(w http.ResponseWriter, r *http.Request) error {
	req, err := pageRequest(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	p, err := h.svc.Jobs(r.Context(), caller(r), JobFilter{State: q.Get("state"), Kind: q.Get("kind"), VideoID: q.Get("video_id")}, req)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, p)
	return nil
}

func (h *Handler) retryJob(w http.ResponseWriter, r *http.Request) error {
	j, err := h.svc.RetryJob(r.Context(), caller(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, jobBody{j})
	return nil
}

func (h *Handler) cancelJob(w http.ResponseWriter, r *http.Request) error {
	j, err := h.svc.CancelJob(r.Context(), caller(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, jobBody{j})
	return nil
}
