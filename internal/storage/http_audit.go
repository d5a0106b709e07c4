package storage

import (
	"net/http"
	"strconv"

	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/reserve"
)

// The internal routes of the consistency check (reel check), which the
// videos service runs: Accounts, Objects, Correct, Lapsed and Sweep over
// HTTP.
func (h *Handler) auditRoutes(r httpx.Router, in func(httpx.HandlerFunc) http.Handler) {
	r.Handle("GET /internal/v1/storage/accounts", in(h.accounts))
	r.Handle("GET /internal/v1/storage/users/{id}/objects", in(h.objects))
	r.Handle("POST /internal/v1/storage/users/{id}/corrections", in(h.correct))
	r.Handle("GET /internal/v1/storage/reservations/lapsed", in(reserve.LapsedHandler(h.svc.Lapsed)))
	r.Handle("POST /internal/v1/storage/sweep", in(reserve.SweepHandler(h.svc.Sweep)))
}

// maxCorrections bounds one Correct call, so that its body stays small.
const maxCorrections = 1000

type correctRequest struct {
	Corrections []reserve.Correction `json:"corrections"`
}

type correctResponse struct {
	Applied int `json:"applied"`
}

func pageLimit(r *http.Request) (int, error) {
	n, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil {
		return 0, reserve.Invalid("limit", "must be a number")
	}
	return n, nil
}

func (h *Handler) accounts(w http.ResponseWriter, r *http.Request) error {
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	out, err := h.svc.Accounts(r.Context(), r.URL.Query().Get("after"), limit)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) objects(w http.ResponseWriter, r *http.Request) error {
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	out, err := h.svc.Objects(r.Context(), r.PathValue("id"), r.URL.Query().Get("after"), limit)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) correct(w http.ResponseWriter, r *http.Request) error {
	var in correctRequest
	if err := httpx.Decode(w, r, &in, 1<<20); err != nil {
		return err
	}
	if len(in.Corrections) > maxCorrections {
		return reserve.Invalid("corrections", "at most "+strconv.Itoa(maxCorrections)+" per call")
	}
	n, err := h.svc.Correct(r.Context(), r.PathValue("id"), in.Corrections)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, correctResponse{n})
	return nil
}
