package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/users"
)

// authForm is the data of the login, sign-up and setup forms.
type authForm struct {
	Next     string
	Email    string
	Username string
	Token    string            // the setup link's token
	Fields   map[string]string // per-field errors
}

// notices are the messages a page shows after a redirect (?done=…):
// fixed texts, so that a link cannot make a page say anything else.
var notices = map[string]string{
	"logout":   "You are signed out.",
	"renamed":  "The title is changed.",
	"deleted":  "The video is in the trash. You can restore it from there.",
	"restored": "The video is back in your videos.",
	"password": "Your password is changed. Your other sessions are signed out.",
	"profile":  "Your name is changed.",
	"revoked":  "That session is signed out.",
	"others":   "Your other sessions are signed out.",
	"saved":    "The account is saved.",
	"welcome":  "Welcome to reel.",
	"uploaded": "The video is uploaded. It plays as soon as it is ready.",
	// The jobs page.
	"job-retry":  "The job will run again.",
	"job-cancel": "The job is cancelled.",
}

func notice(r *http.Request) string { return notices[r.URL.Query().Get("done")] }

func (a *App) loginPage(w http.ResponseWriter, r *http.Request) {
	if s, err := a.session(r); err == nil && s != nil {
		http.Redirect(w, r, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	v := a.view(nil, "Log in", "login")
	v.Notice = notice(r)
	v.Data = authForm{Next: localPath(r.URL.Query().Get("next"))}
	a.render(w, r, http.StatusOK, "login.html", v)
}

func (a *App) login(w http.ResponseWriter, r *http.Request) {
	f := authForm{Next: localPath(r.PostFormValue("next")), Email: strings.TrimSpace(r.PostFormValue("email"))}
	t, err := a.d.Users.Login(r.Context(), f.Email, r.PostFormValue("password"))
	if err != nil {
		status, msg := a.message(r, err)
		if e, ok := errs.As(err); ok && e.RetryAfter > 0 {
			msg = "Too many failed attempts. Try again in " + fmtUntil(e.RetryAfter) + "."
		}
		v := a.view(nil, "Log in", "login")
		v.Error, v.Data = msg, f
		a.render(w, r, status, "login.html", v)
		return
	}
	a.setSession(w, r, t)
	http.Redirect(w, r, f.Next, http.StatusSeeOther)
}

func (a *App) signupPage(w http.ResponseWriter, r *http.Request) {
	v := a.view(nil, "Sign up", "signup")
	v.Data = authForm{}
	a.render(w, r, http.StatusOK, "signup.html", v)
}

func (a *App) signup(w http.ResponseWriter, r *http.Request) {
	f := authForm{Email: strings.TrimSpace(r.PostFormValue("email")), Username: strings.TrimSpace(r.PostFormValue("username"))}
	password := r.PostFormValue("password")
	if err := a.registerAndLogin(w, r, a.d.Users.Register, users.RegisterInput{Email: f.Email, Username: f.Username, Password: password}, r.PostFormValue("confirm")); err != nil {
		v := a.view(nil, "Sign up", "signup")
		var status int
		status, v.Error = a.message(r, err)
		if e, ok := errs.As(err); ok {
			f.Fields = e.Fields
		}
		v.Data = f
		a.render(w, r, status, "signup.html", v)
		return
	}
	http.Redirect(w, r, "/?done=welcome", http.StatusSeeOther)
}

// errMismatch refuses a form whose two passwords differ.
var errMismatch = users.ErrValidation.WithFields(map[string]string{"confirm": "must be the same as the password"})

// registerAndLogin creates an account with create and signs its new owner
// in.
func (a *App) registerAndLogin(w http.ResponseWriter, r *http.Request,
	create func(context.Context, users.RegisterInput) (users.User, error), in users.RegisterInput, confirm string) error {
	if in.Password != confirm {
		return errMismatch
	}
	if _, err := create(r.Context(), in); err != nil {
		return err
	}
	t, err := a.d.Users.Login(r.Context(), in.Email, in.Password)
	if err != nil {
		return err
	}
	a.setSession(w, r, t)
	return nil
}

// refreshPage rotates the session for a page whose access cookie has
// expired, and sends the browser back. A navigation from another site is
// not followed: it goes to the login page instead of rotating anything.
func (a *App) refreshPage(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"))
	login := "/login?next=" + url.QueryEscape(next)
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		http.Redirect(w, r, login, http.StatusSeeOther)
		return
	}
	ck, err := r.Cookie(RefreshCookie)
	if err != nil || ck.Value == "" {
		http.Redirect(w, r, login, http.StatusSeeOther)
		return
	}
	t, err := a.refresh.refresh(r.Context(), ck.Value)
	if err != nil {
		if errs.KindOf(err) == errs.Unavailable {
			a.fail(w, r, nil, err)
			return
		}
		a.clearSession(w, r)
		http.Redirect(w, r, login, http.StatusSeeOther)
		return
	}
	a.setSession(w, r, t)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// refreshAPI is the page scripts' refresh: on a 401 from the API, or
// before the access token expires. It answers the new token's lifetime.
func (a *App) refreshAPI(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(RefreshCookie)
	if err != nil || ck.Value == "" {
		httpx.Error(w, r, users.ErrInvalidRefresh)
		return
	}
	t, err := a.refresh.refresh(r.Context(), ck.Value)
	if err != nil {
		if errs.KindOf(err) != errs.Unavailable {
			a.clearSession(w, r)
		}
		httpx.Error(w, r, err)
		return
	}
	a.setSession(w, r, t)
	httpx.JSON(w, http.StatusOK, map[string]int{"expires_in": t.ExpiresIn})
}

// logout revokes the session's refresh token (its family) and clears the
// cookies. An expired access cookie does not stop it: the refresh token
// itself says whose session it is.
func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	defer http.Redirect(w, r, "/login?done=logout", http.StatusSeeOther)
	defer a.clearSession(w, r)
	ck, err := r.Cookie(RefreshCookie)
	if err != nil || ck.Value == "" {
		return
	}
	refresh := ck.Value
	s, err := a.session(r)
	var ctx context.Context
	var caller authn.Caller
	if err == nil {
		ctx, caller = s.context(r.Context()), s.caller
	} else {
		t, err := a.refresh.refresh(r.Context(), refresh)
		if err != nil {
			return // revoked or expired already
		}
		caller, refresh = authn.Caller{UserID: t.User.ID, Role: t.User.Role}, t.RefreshToken
		ctx = signedIn(r.Context(), caller, t.AccessToken)
	}
	if err := a.d.Users.Logout(ctx, caller, refresh); err != nil {
		a.message(r, err) // logged; the cookies go anyway
	}
}

// revokeOthers signs out every other session of the user: the refresh
// cookie, sent only here, says which session is this one.
func (a *App) revokeOthers(w http.ResponseWriter, r *http.Request) {
	s, err := a.session(r)
	if err != nil {
		http.Redirect(w, r, "/auth/refresh?next=/account", http.StatusSeeOther)
		return
	}
	ck, err := r.Cookie(RefreshCookie)
	if err != nil || ck.Value == "" {
		a.fail(w, r, s, users.ErrInvalidRefresh)
		return
	}
	if _, err := a.d.Users.RevokeOtherSessions(s.context(r.Context()), s.user.ID, ck.Value); err != nil {
		a.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/account?done=others", http.StatusSeeOther)
}
