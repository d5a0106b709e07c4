package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/users"
)

// errSetupLink answers a setup link that is not (or no longer) valid.
var errSetupLink = errs.New(errs.NotFound, "setup_link_invalid",
	"this setup link is not valid: it was used already, or reel has restarted and printed a new one")

// setup is the first run's one-time link: while no admin exists, the
// process makes a random token, kept in memory only and printed in its log,
// and the page at /setup/<token> creates the admin. No default password is
// ever set; a restart prints a new link.
type setup struct {
	mu    sync.Mutex
	token string
}

// FirstRun returns the path of the setup page when no admin exists (and
// makes its token on the first call), or "" when one does.
func (a *App) FirstRun(ctx context.Context) (string, error) {
	ok, err := a.d.Users.HasAdmin(ctx)
	if err != nil || ok {
		return "", err
	}
	a.setup.mu.Lock()
	defer a.setup.mu.Unlock()
	if a.setup.token == "" {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		a.setup.token = base64.RawURLEncoding.EncodeToString(b)
	}
	return "/setup/" + a.setup.token, nil
}

// validSetup compares a link's token with the process's in constant time.
func (a *App) validSetup(token string) bool {
	a.setup.mu.Lock()
	defer a.setup.mu.Unlock()
	return a.setup.valid(token)
}

// valid is validSetup with the lock held.
func (s *setup) valid(token string) bool {
	return s.token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.token)) == 1
}

func (a *App) setupPage(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if !a.validSetup(token) {
		a.fail(w, r, nil, errSetupLink)
		return
	}
	if ok, err := a.d.Users.HasAdmin(r.Context()); err != nil || ok {
		a.fail(w, r, nil, orErr(err, errSetupLink))
		return
	}
	v := a.view(nil, "Set up reel", "")
	v.Data = authForm{Token: token}
	a.render(w, r, http.StatusOK, "setup.html", v)
}

// setupAdmin creates the first admin. The lock makes two posts of the
// form one after the other, so the second finds the admin and the link
// spent.
func (a *App) setupAdmin(w http.ResponseWriter, r *http.Request) {
	a.setup.mu.Lock()
	defer a.setup.mu.Unlock()
	token := r.PathValue("token")
	if !a.setup.valid(token) {
		a.fail(w, r, nil, errSetupLink)
		return
	}
	if ok, err := a.d.Users.HasAdmin(r.Context()); err != nil || ok {
		a.fail(w, r, nil, orErr(err, errSetupLink))
		return
	}
	f := authForm{Token: token, Email: strings.TrimSpace(r.PostFormValue("email")), Username: strings.TrimSpace(r.PostFormValue("username"))}
	password := r.PostFormValue("password")
	err := a.registerAndLogin(w, r, a.d.Users.CreateFirstAdmin, users.RegisterInput{Email: f.Email, Username: f.Username, Password: password}, r.PostFormValue("confirm"))
	if err != nil {
		v := a.view(nil, "Set up reel", "")
		var status int
		status, v.Error = a.message(r, err)
		if e, ok := errs.As(err); ok {
			f.Fields = e.Fields
		}
		v.Data = f
		a.render(w, r, status, "setup.html", v)
		return
	}
	a.setup.token = "" // spent
	a.log.Info("first admin created through the setup link", "email", f.Email)
	http.Redirect(w, r, "/admin/users?done=welcome", http.StatusSeeOther)
}

func orErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}
