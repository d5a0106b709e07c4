package compat

import (
	"context"
	_ "embed"
	"errors"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/users"
)

// UsersOpenAPI describes the users part of the compatibility surface, an
// OpenAPI 3.1 fragment for the users module's document.
//
//go:embed openapi_users.json
var UsersOpenAPI []byte

// UserService is what the users part needs of the users service.
type UserService interface {
	Register(ctx context.Context, in users.RegisterInput) (users.User, error)
	Login(ctx context.Context, email, password string) (users.Tokens, error)
	Get(ctx context.Context, id string) (users.User, error)
}

// Users serves the original user account service's routes.
type Users struct {
	svc  UserService
	auth auth
}

// NewUsers returns the users part over svc; verifier checks access tokens.
func NewUsers(svc UserService, verifier *authn.Verifier) *Users {
	return &Users{svc: svc, auth: auth{verifier}}
}

// Routes registers the routes.
func (u *Users) Routes(r httpx.Router) {
	r.Handle("POST /api/users/register", handler{fallback: "Error registering user", fn: u.register})
	r.Handle("POST /api/users/login", handler{fallback: "Error logging in user", fn: u.login})
	r.Handle("GET /api/users/user/{id}", u.auth.require("Error fetching user data", u.user))
}

// Messages of the original user account service.
const (
	msgRegistered   = "User registered successfully"
	msgEmailTaken   = "User already exists with this email"
	msgLoggedIn     = "Login successful"
	msgInvalidCreds = "Invalid credentials"
	msgUserNotFound = "User not found"
	msgInvalidInput = "Invalid input"
	// defaultUsername is what the original stored when no username was
	// given; reel requires one.
	defaultUsername = "Default Username"
)

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Username string `json:"username"`
}

func (u *Users) register(w http.ResponseWriter, r *http.Request) error {
	var in credentials
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if strings.TrimSpace(in.Username) == "" {
		in.Username = defaultUsername
	}
	_, err := u.svc.Register(r.Context(), users.RegisterInput{Email: in.Email, Password: in.Password, Username: in.Username})
	switch {
	case errors.Is(err, users.ErrEmailTaken):
		return fail(http.StatusBadRequest, msgEmailTaken)
	case errors.Is(err, users.ErrValidation):
		return failWhy(http.StatusBadRequest, msgInvalidInput, fieldErrors(err))
	case err != nil:
		return err
	}
	httpx.JSON(w, http.StatusOK, body{Message: msgRegistered})
	return nil
}

// fieldErrors renders a validation error's fields as one line, in a stable
// order: "password: must have at least 8 characters".
func fieldErrors(err error) string {
	e, ok := errs.As(err)
	if !ok || len(e.Fields) == 0 {
		return "some fields are not valid"
	}
	parts := make([]string, 0, len(e.Fields))
	for f, msg := range e.Fields {
		parts = append(parts, f+": "+msg)
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

type loginAnswer struct {
	Message string `json:"message"`
	Token   string `json:"token"`
}

func (u *Users) login(w http.ResponseWriter, r *http.Request) error {
	var in credentials
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	// The access token is an ordinary reel token: it carries the id and
	// email claims the original client decodes, and works on /api/v1 too.
	// The refresh token that comes with it is not handed out: the original
	// had none, and it expires unused.
	t, err := u.svc.Login(r.Context(), in.Email, in.Password)
	switch {
	case errors.Is(err, users.ErrInvalidCredentials):
		return fail(http.StatusBadRequest, msgInvalidCreds)
	case errors.Is(err, users.ErrAccountDisabled):
		return fail(http.StatusForbidden, "This account is disabled")
	case errors.Is(err, users.ErrTooManyAttempts):
		e, _ := errs.As(err)
		return &failure{status: http.StatusTooManyRequests, message: "Too many failed logins, try again later", retryAfter: e.RetryAfter}
	case err != nil:
		return err
	}
	httpx.JSON(w, http.StatusOK, loginAnswer{Message: msgLoggedIn, Token: t.AccessToken})
	return nil
}

// userRow is the original's user as GET /api/users/user/{id} returns it.
type userRow struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Username  string    `json:"username"`
	CreatedAt time.Time `json:"created_at"`
	Role      string    `json:"role"`
}

type userAnswer struct {
	User userRow `json:"user"`
}

func (u *Users) user(w http.ResponseWriter, r *http.Request, c authn.Caller) error {
	id := r.PathValue("id")
	// The original answered anyone, token or not; reel answers the
	// account's owner and admins only.
	if id != c.UserID && !c.IsAdmin() {
		return fail(http.StatusForbidden, msgAdminOnly)
	}
	usr, err := u.svc.Get(r.Context(), id)
	if errors.Is(err, users.ErrUserNotFound) {
		return fail(http.StatusNotFound, msgUserNotFound)
	}
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, userAnswer{userRow{ID: usr.ID, Email: usr.Email, Username: usr.Username, CreatedAt: usr.CreatedAt, Role: usr.Role}})
	return nil
}
