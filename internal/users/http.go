package users

import (
	"encoding/json"
	"net/http"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/platform/rpc"
)

// Handler serves the users service's routes.
type Handler struct {
	svc  *Service
	auth *authn.Verifier
}

// NewHandler returns the HTTP handler of svc.
func NewHandler(svc *Service, auth *authn.Verifier) *Handler {
	return &Handler{svc: svc, auth: auth}
}

// Routes registers the public routes.
func (h *Handler) Routes(r httpx.Router) {
	r.Handle("POST /api/v1/auth/register", httpx.HandlerFunc(h.register))
	r.Handle("POST /api/v1/auth/login", httpx.HandlerFunc(h.login))
	r.Handle("POST /api/v1/auth/refresh", httpx.HandlerFunc(h.refresh))
	r.Handle("POST /api/v1/auth/logout", h.auth.Require(httpx.HandlerFunc(h.logout)))
	r.Handle("GET /api/v1/users/me", h.auth.Require(httpx.HandlerFunc(h.me)))
	r.Handle("PATCH /api/v1/users/me", h.auth.Require(httpx.HandlerFunc(h.updateMe)))
	r.Handle("GET /api/v1/users/me/sessions", h.auth.Require(httpx.HandlerFunc(h.sessions)))
	r.Handle("DELETE /api/v1/users/me/sessions/{id}", h.auth.Require(httpx.HandlerFunc(h.revokeSession)))
	r.Handle("POST /api/v1/users/me/sessions/revoke-others", h.auth.Require(httpx.HandlerFunc(h.revokeOthers)))
	r.Handle("GET /api/v1/users", h.auth.RequireAdmin(httpx.HandlerFunc(h.list)))
	r.Handle("GET /api/v1/users/{id}", h.auth.RequireAdmin(httpx.HandlerFunc(h.get)))
	r.Handle("PATCH /api/v1/users/{id}", h.auth.RequireAdmin(httpx.HandlerFunc(h.update)))
	r.Handle("GET /.well-known/jwks.json", http.HandlerFunc(h.jwks))
}

// InternalRoutes registers the routes through which services in other
// processes call this one (Client): whether an account exists and how it
// stands (storage, usage, every verifier), the accounts version (every
// verifier's Watch), and for the gateway's web app the owners' names on
// its lists and the first-run setup. Only callers holding a service
// credential signed with keys get in.
func (h *Handler) InternalRoutes(r httpx.Router, keys *authn.ServiceKeys) {
	in := func(f httpx.HandlerFunc) http.Handler { return rpc.Internal(keys, f) }
	r.Handle("GET /internal/v1/users/version", in(h.version))
	r.Handle("GET /internal/v1/users/{id}", in(h.exists))
	r.Handle("GET /internal/v1/users", in(h.names))
	r.Handle("GET /internal/v1/admin", in(h.hasAdmin))
	r.Handle("POST /internal/v1/admin", in(h.createFirstAdmin))
}

// versionBody is the internal version route's answer.
type versionBody struct {
	Version int64 `json:"version"`
}

// version answers the accounts version.
func (h *Handler) version(w http.ResponseWriter, r *http.Request) error {
	v, err := h.svc.AccountsVersion(r.Context())
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, versionBody{v})
	return nil
}

// exists answers 200 with the id of an account that exists, else 404.
func (h *Handler) exists(w http.ResponseWriter, r *http.Request) error {
	u, err := h.svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	st, err := h.svc.Standing(r.Context(), u.ID)
	if err != nil {
		return err
	}
	b := standingBody{ID: u.ID, Role: st.Role, Disabled: st.Disabled}
	if !st.ValidAfter.IsZero() {
		b.TokensValidAfter = micros(st.ValidAfter)
	}
	httpx.JSON(w, http.StatusOK, b)
	return nil
}

type userBody struct {
	User User `json:"user"`
}

func (h *Handler) register(w http.ResponseWriter, r *http.Request) error {
	var in registerBody
	if err := httpx.Decode(w, r, &in, 0); err != nil {
		return err
	}
	u, err := h.svc.Register(r.Context(), RegisterInput{Email: in.Email, Password: in.Password, Username: in.Username})
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusCreated, userBody{u})
	return nil
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := httpx.Decode(w, r, &in, 0); err != nil {
		return err
	}
	t, err := h.svc.Login(r.Context(), in.Email, in.Password)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, t)
	return nil
}

type refreshBody struct {
	RefreshToken string `json:"refresh_token"`
}

func (h *Handler) refresh(w http.ResponseWriter, r *http.Request) error {
	var in refreshBody
	if err := httpx.Decode(w, r, &in, 0); err != nil {
		return err
	}
	t, err := h.svc.Refresh(r.Context(), in.RefreshToken)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, t)
	return nil
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) error {
	var in refreshBody
	if err := httpx.Decode(w, r, &in, 0); err != nil {
		return err
	}
	c, _ := authn.CallerFrom(r.Context())
	if err := h.svc.Logout(r.Context(), c, in.RefreshToken); err != nil {
		return err
	}
	httpx.NoContent(w)
	return nil
}

func (h *Handler) me(w http.ResponseWriter, r *http.Request) error {
	c, _ := authn.CallerFrom(r.Context())
	u, err := h.svc.Get(r.Context(), c.UserID)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, userBody{u})
	return nil
}

func (h *Handler) updateMe(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Username        *string `json:"username"`
		Password        *string `json:"password"`
		CurrentPassword *string `json:"current_password"`
	}
	if err := httpx.Decode(w, r, &in, 0); err != nil {
		return err
	}
	c, _ := authn.CallerFrom(r.Context())
	u, err := h.svc.UpdateSelf(r.Context(), c, UpdateMe{Username: in.Username, Password: in.Password, CurrentPassword: in.CurrentPassword})
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, userBody{u})
	return nil
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	req, err := page.Parse(q.Get("cursor"), q.Get("limit"), 100, 1000)
	if err != nil {
		return err
	}
	p, err := h.svc.Search(r.Context(), q.Get("q"), req)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, p)
	return nil
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) error {
	u, err := h.svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, userBody{u})
	return nil
}

func (h *Handler) update(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Role                  *string `json:"role"`
		Disabled              *bool   `json:"disabled"`
		StorageQuotaBytes     *int64  `json:"storage_quota_bytes"`
		DailyUploadLimitBytes *int64  `json:"daily_upload_limit_bytes"`
		DailyEgressLimitBytes *int64  `json:"daily_egress_limit_bytes"`
	}
	if err := httpx.Decode(w, r, &in, 0); err != nil {
		return err
	}
	u, err := h.svc.Update(r.Context(), r.PathValue("id"), AdminUpdate{
		Role: in.Role, Disabled: in.Disabled,
		Limits: Limits{StorageQuota: in.StorageQuotaBytes, DailyUpload: in.DailyUploadLimitBytes, DailyEgress: in.DailyEgressLimitBytes},
	})
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, userBody{u})
	return nil
}

func (h *Handler) jwks(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(h.svc.JWKS())
}

// Sessions lists the caller's sessions, for the web app's account page.
type Sessions struct {
	Items []Session `json:"items"`
}

func (h *Handler) sessions(w http.ResponseWriter, r *http.Request) error {
	c, _ := authn.CallerFrom(r.Context())
	list, err := h.svc.Sessions(r.Context(), c.UserID)
	if err != nil {
		return err
	}
	if list == nil {
		list = []Session{}
	}
	httpx.JSON(w, http.StatusOK, Sessions{list})
	return nil
}

func (h *Handler) revokeSession(w http.ResponseWriter, r *http.Request) error {
	c, _ := authn.CallerFrom(r.Context())
	if err := h.svc.RevokeSession(r.Context(), c.UserID, r.PathValue("id")); err != nil {
		return err
	}
	httpx.NoContent(w)
	return nil
}

// Revoked answers the revocation of the other sessions.
type Revoked struct {
	Revoked int `json:"revoked"`
}

// revokeOthers ends every session of the caller but the one that holds the
// refresh token in the body: the token, not the access token, says which
// session is the caller's own.
func (h *Handler) revokeOthers(w http.ResponseWriter, r *http.Request) error {
	var in refreshBody
	if err := httpx.Decode(w, r, &in, 0); err != nil {
		return err
	}
	c, _ := authn.CallerFrom(r.Context())
	n, err := h.svc.RevokeOtherSessions(r.Context(), c.UserID, in.RefreshToken)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, Revoked{n})
	return nil
}

// Names answers the internal names lookup: usernames by account id.
type Names struct {
	Names map[string]string `json:"names"`
}

func (h *Handler) names(w http.ResponseWriter, r *http.Request) error {
	names, err := h.svc.Names(r.Context(), r.URL.Query()["id"])
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, Names{names})
	return nil
}

type adminState struct {
	Exists bool `json:"exists"`
}

func (h *Handler) hasAdmin(w http.ResponseWriter, r *http.Request) error {
	ok, err := h.svc.HasAdmin(r.Context())
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, adminState{ok})
	return nil
}

// registerBody is a new account.
type registerBody struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Username string `json:"username"`
}

func (h *Handler) createFirstAdmin(w http.ResponseWriter, r *http.Request) error {
	var in registerBody
	if err := httpx.Decode(w, r, &in, 0); err != nil {
		return err
	}
	u, err := h.svc.CreateFirstAdmin(r.Context(), RegisterInput{Email: in.Email, Password: in.Password, Username: in.Username})
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusCreated, userBody{u})
	return nil
}
