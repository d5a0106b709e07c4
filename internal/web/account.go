package web

import (
	"net/http"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/users"
)

type sessionRow struct {
	users.Session
	Current bool
}

type accountData struct {
	Sessions []sessionRow
	Fields   map[string]string
	Username string
}

func (a *App) account(w http.ResponseWriter, r *http.Request, s *session) error {
	return a.renderAccount(w, r, s, http.StatusOK, nil)
}

// renderAccount shows the account page, with err's message and fields
// when a form on it was refused.
func (a *App) renderAccount(w http.ResponseWriter, r *http.Request, s *session, status int, formErr error) error {
	list, err := a.d.Users.Sessions(r.Context(), s.user.ID)
	if err != nil {
		return err
	}
	d := accountData{Username: s.user.Username}
	for _, ss := range list {
		d.Sessions = append(d.Sessions, sessionRow{Session: ss, Current: ss.ID == s.sid})
	}
	v := a.view(s, "Account", "account")
	v.Notice = notice(r)
	if formErr != nil {
		_, v.Error = a.message(r, formErr)
		if e, ok := errs.As(formErr); ok {
			d.Fields = e.Fields
		}
		if name := r.PostFormValue("username"); name != "" {
			d.Username = name
		}
	}
	v.Data = d
	a.render(w, r, status, "account.html", v)
	return nil
}

func (a *App) changeProfile(w http.ResponseWriter, r *http.Request, s *session) error {
	name := r.PostFormValue("username")
	if _, err := a.d.Users.UpdateSelf(r.Context(), s.caller, users.UpdateMe{Username: &name}); err != nil {
		status, _ := a.message(r, err)
		return a.renderAccount(w, r, s, status, err)
	}
	a.accounts.forget(s.user.ID)
	http.Redirect(w, r, "/account?done=profile", http.StatusSeeOther)
	return nil
}

// changePassword changes the password, which signs out every session this
// one included; it is then signed in afresh with the new password.
func (a *App) changePassword(w http.ResponseWriter, r *http.Request, s *session) error {
	current, next := r.PostFormValue("current_password"), r.PostFormValue("password")
	if next != r.PostFormValue("confirm") {
		return a.renderAccount(w, r, s, http.StatusUnprocessableEntity, errMismatch)
	}
	if _, err := a.d.Users.UpdateSelf(r.Context(), s.caller, users.UpdateMe{Password: &next, CurrentPassword: &current}); err != nil {
		status, _ := a.message(r, err)
		return a.renderAccount(w, r, s, status, err)
	}
	t, err := a.d.Users.Login(r.Context(), s.user.Email, next)
	if err != nil {
		a.clearSession(w, r)
		http.Redirect(w, r, "/login?next=/account", http.StatusSeeOther)
		return nil //nolint:nilerr // the password is changed; the login page says the rest
	}
	a.setSession(w, r, t)
	http.Redirect(w, r, "/account?done=password", http.StatusSeeOther)
	return nil
}

func (a *App) revokeSession(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := a.d.Users.RevokeSession(r.Context(), s.user.ID, r.PathValue("id")); err != nil {
		status, _ := a.message(r, err)
		return a.renderAccount(w, r, s, status, err)
	}
	http.Redirect(w, r, "/account?done=revoked", http.StatusSeeOther)
	return nil
}
