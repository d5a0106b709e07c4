package storage

import (
	"context"
	"fmt"
	"net/http"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/reserve"
	"github.com/reel-video/reel/internal/platform/rpc"
)

// Users tells whether an account exists: the users service, in process or
// over HTTP. Storage keeps figures for any id it is asked to charge; an
// admin asking about an id no account has gets 404, not an empty account.
type Users interface {
	UserExists(ctx context.Context, id string) (bool, error)
}

// ErrUserNotFound answers an admin's question about an unknown account.
var ErrUserNotFound = errs.New(errs.NotFound, "user_not_found", "no such user")

// Handler serves the storage service's routes.
type Handler struct {
	svc   *Service
	auth  *authn.Verifier
	users Users
}

// NewHandler returns the HTTP handler of svc; users answers for the
// admin route about another user.
func NewHandler(svc *Service, auth *authn.Verifier, users Users) *Handler {
	return &Handler{svc: svc, auth: auth, users: users}
}

// Routes registers the public routes. A user reads only their own figures;
// anyone else's are behind the admin route.
func (h *Handler) Routes(r httpx.Router) {
	r.Handle("GET /api/v1/storage/me", h.auth.Require(httpx.HandlerFunc(h.me)))
	r.Handle("GET /api/v1/storage/users/{id}", h.auth.RequireAdmin(httpx.HandlerFunc(h.user)))
}

func (h *Handler) me(w http.ResponseWriter, r *http.Request) error {
	c, _ := authn.CallerFrom(r.Context())
	u, err := h.svc.Check(r.Context(), c.UserID)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, u)
	return nil
}

func (h *Handler) user(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := reserve.CheckUser(id); err != nil {
		return err
	}
	if ok, err := h.users.UserExists(r.Context(), id); err != nil {
		return fmt.Errorf("look up user: %w", err)
	} else if !ok {
		return ErrUserNotFound
	}
	u, err := h.svc.Check(r.Context(), id)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, u)
	return nil
}

// InternalRoutes registers the routes through which services in other
// processes call this one (the Quota interface over HTTP, used by Client);
// only callers holding a service credential signed with keys get in.
func (h *Handler) InternalRoutes(r httpx.Router, keys *authn.ServiceKeys) {
	in := func(f httpx.HandlerFunc) http.Handler { return rpc.Internal(keys, f) }
	r.Handle("POST /internal/v1/storage/reservations", in(h.reserve))
	r.Handle("POST /internal/v1/storage/reservations/{id}/commit", in(h.commit))
	r.Handle("POST /internal/v1/storage/reservations/{id}/release", in(h.release))
	r.Handle("POST /internal/v1/storage/reservations/{id}/renew", in(reserve.RenewHandler(h.svc.Renew)))
	r.Handle("POST /internal/v1/storage/users/{id}/free", in(h.free))
	r.Handle("POST /internal/v1/storage/users/{id}/charge", in(h.charge))
	r.Handle("GET /internal/v1/storage/users/{id}", in(h.usage))
	r.Handle("PUT /internal/v1/storage/users/{id}/quota", in(h.setQuota))
	h.auditRoutes(r, in)
}

// reserveRequest is the body of the internal reserve route. ID is chosen
// by the client so that a retry finds the reservation it made.
type reserveRequest struct {
	ID     string `json:"id"`
	UserID string `json:"user_id"`
	Bytes  int64  `json:"bytes"`
	TTLMS  int64  `json:"ttl_ms"`
}

type commitRequest struct {
	ActualBytes int64  `json:"actual_bytes"`
	Object      string `json:"object"`
}

type objectRequest struct {
	Object string `json:"object"`
	Bytes  int64  `json:"bytes,omitempty"`
}

type freeResponse struct {
	FreedBytes int64 `json:"freed_bytes"`
}

type quotaRequest struct {
	QuotaBytes *int64 `json:"quota_bytes"`
}

func (h *Handler) reserve(w http.ResponseWriter, r *http.Request) error {
	var in reserveRequest
	if err := httpx.Decode(w, r, &in, 0); err != nil {
		return err
	}
	ttl, err := reserve.TTL(in.TTLMS)
	if err != nil {
		return err
	}
	res, err := h.svc.reserve(r.Context(), in.ID, in.UserID, in.Bytes, ttl)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusCreated, res)
	return nil
}

func (h *Handler) commit(w http.ResponseWriter, r *http.Request) error {
	var in commitRequest
	if err := httpx.Decode(w, r, &in, 0); err != nil {
		return err
	}
	if err := h.svc.Commit(r.Context(), r.PathValue("id"), in.ActualBytes, in.Object); err != nil {
		return err
	}
	httpx.NoContent(w)
	return nil
}

func (h *Handler) release(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.Release(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	httpx.NoContent(w)
	return nil
}

func (h *Handler) free(w http.ResponseWriter, r *http.Request) error {
	var in objectRequest
	if err := httpx.Decode(w, r, &in, 0); err != nil {
		return err
	}
	n, err := h.svc.Free(r.Context(), r.PathValue("id"), in.Object)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, freeResponse{n})
	return nil
}

func (h *Handler) charge(w http.ResponseWriter, r *http.Request) error {
	var in objectRequest
	if err := httpx.Decode(w, r, &in, 0); err != nil {
		return err
	}
	if err := h.svc.Charge(r.Context(), r.PathValue("id"), in.Object, in.Bytes); err != nil {
		return err
	}
	httpx.NoContent(w)
	return nil
}

func (h *Handler) usage(w http.ResponseWriter, r *http.Request) error {
	u, err := h.svc.Usage(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, u)
	return nil
}

func (h *Handler) setQuota(w http.ResponseWriter, r *http.Request) error {
	var in quotaRequest
	if err := httpx.Decode(w, r, &in, 0); err != nil {
		return err
	}
	if in.QuotaBytes == nil {
		return reserve.Invalid("quota_bytes", "is required")
	}
	if err := h.svc.SetQuota(r.Context(), r.PathValue("id"), *in.QuotaBytes); err != nil {
		return err
	}
	httpx.NoContent(w)
	return nil
}
