package usage

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

// maxEgressBody bounds an egress batch: tens of thousands of viewers.
const maxEgressBody = 4 << 20

// Users tells whether an account exists: the users service, in process or
// over HTTP. Usage keeps counters for any id it is asked to count; an admin
// asking about an id no account has gets 404, not a history of zeros.
type Users interface {
	UserExists(ctx context.Context, id string) (bool, error)
}

// ErrUserNotFound answers an admin's question about an unknown account.
var ErrUserNotFound = errs.New(errs.NotFound, "user_not_found", "no such user")

// Handler serves the usage service's routes.
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

// Routes registers the public routes. A user reads only their own
// counters; anyone else's are behind the admin route.
func (h *Handler) Routes(r httpx.Router) {
	r.Handle("GET /api/v1/usage/me", h.auth.Require(httpx.HandlerFunc(h.me)))
	r.Handle("GET /api/v1/usage/users/{id}", h.auth.RequireAdmin(httpx.HandlerFunc(h.user)))
}

// History is the answer of the admin route: one item per day, oldest
// first.
type History struct {
	UserID string   `json:"user_id"`
	From   string   `json:"from"`
	To     string   `json:"to"`
	Items  []Status `json:"items"`
}

func (h *Handler) me(w http.ResponseWriter, r *http.Request) error {
	c, _ := authn.CallerFrom(r.Context())
	st, err := h.svc.Check(r.Context(), c.UserID)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, st)
	return nil
}

func (h *Handler) user(w http.ResponseWriter, r *http.Request) error {
	id, q := r.PathValue("id"), r.URL.Query()
	if err := reserve.CheckUser(id); err != nil {
		return err
	}
	if ok, err := h.users.UserExists(r.Context(), id); err != nil {
		return fmt.Errorf("look up user: %w", err)
	} else if !ok {
		return ErrUserNotFound
	}
	items, err := h.svc.History(r.Context(), id, q.Get("from"), q.Get("to"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, History{UserID: id, From: items[0].Day, To: items[len(items)-1].Day, Items: items})
	return nil
}

// InternalRoutes registers the routes through which services in other
// processes call this one (the Meter interface over HTTP, used by Client);
// only callers holding a service credential signed with keys get in.
func (h *Handler) InternalRoutes(r httpx.Router, keys *authn.ServiceKeys) {
	in := func(f httpx.HandlerFunc) http.Handler { return rpc.Internal(keys, f) }
	r.Handle("POST /internal/v1/usage/uploads", in(h.reserve))
	r.Handle("POST /internal/v1/usage/uploads/{id}/commit", in(h.commit))
	r.Handle("POST /internal/v1/usage/uploads/{id}/release", in(h.release))
	r.Handle("POST /internal/v1/usage/uploads/{id}/renew", in(reserve.RenewHandler(h.svc.RenewUpload)))
	r.Handle("POST /internal/v1/usage/egress", in(h.egress))
	r.Handle("GET /internal/v1/usage/users/{id}", in(h.today))
	r.Handle("GET /internal/v1/usage/users/{id}/allowance", in(h.allowance))
	r.Handle("PATCH /internal/v1/usage/users/{id}/limits", in(h.setLimits))
	// For the consistency check (reel check), run by the videos service.
	r.Handle("GET /internal/v1/usage/uploads/lapsed", in(reserve.LapsedHandler(h.svc.Lapsed)))
	r.Handle("POST /internal/v1/usage/sweep", in(reserve.SweepHandler(h.svc.Sweep)))
}

type reserveRequest struct {
	ID     string `json:"id"`
	UserID string `json:"user_id"`
	Bytes  int64  `json:"bytes"`
	TTLMS  int64  `json:"ttl_ms"`
}

type commitRequest struct {
	ActualBytes int64 `json:"actual_bytes"`
}

type egressRequest struct {
	BatchID string           `json:"batch_id"`
	Bytes   map[string]int64 `json:"bytes"`
}

type allowanceResponse struct {
	AllowanceBytes int64 `json:"allowance_bytes"`
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
	if err := h.svc.CommitUpload(r.Context(), r.PathValue("id"), in.ActualBytes); err != nil {
		return err
	}
	httpx.NoContent(w)
	return nil
}

func (h *Handler) release(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.ReleaseUpload(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	httpx.NoContent(w)
	return nil
}

func (h *Handler) egress(w http.ResponseWriter, r *http.Request) error {
	var in egressRequest
	if err := httpx.Decode(w, r, &in, maxEgressBody); err != nil {
		return err
	}
	if err := h.svc.AddEgress(r.Context(), in.BatchID, in.Bytes); err != nil {
		return err
	}
	httpx.NoContent(w)
	return nil
}

func (h *Handler) today(w http.ResponseWriter, r *http.Request) error {
	st, err := h.svc.Today(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, st)
	return nil
}

func (h *Handler) allowance(w http.ResponseWriter, r *http.Request) error {
	a, err := h.svc.Allowance(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, allowanceResponse{a})
	return nil
}

func (h *Handler) setLimits(w http.ResponseWriter, r *http.Request) error {
	var in Limits
	if err := httpx.Decode(w, r, &in, 0); err != nil {
		return err
	}
	if err := h.svc.SetLimits(r.Context(), r.PathValue("id"), in); err != nil {
		return err
	}
	httpx.NoContent(w)
	return nil
}
