package web

import (
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/users"
)

// RefreshCookie names the cookie holding the page's refresh token. It is
// sent only to the web app's own /auth/ routes (refresh, logout, signing
// out the other sessions), never along with the API's requests.
const RefreshCookie = "reel_refresh"

const refreshPath = "/auth/"

// maxFormBytes bounds a page's form post; none needs more than a few
// fields.
const maxFormBytes = 64 << 10

// session is the signed-in user of a page request.
type session struct {
	caller  authn.Caller
	user    users.User
	sid     string    // the session (refresh-token family) of the access token
	expires time.Time // the access token's exp
	token   string    // the access token itself: never logged, never rendered
}

type tokenKey struct{}

// WithAccessToken returns ctx carrying the signed-in user's access token,
// for the services' HTTP clients (web/remote) to call the public routes as
// that user.
func WithAccessToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, tokenKey{}, token)
}

// AccessToken returns the access token ctx carries, "" when none.
func AccessToken(ctx context.Context) string {
	t, _ := ctx.Value(tokenKey{}).(string)
	return t
}

// signedIn returns ctx acting as c with token: the services record their
// events as c's, as behind the API's Require, and their HTTP clients call
// as c.
func signedIn(ctx context.Context, c authn.Caller, token string) context.Context {
	return WithAccessToken(authn.WithCaller(ctx, c), token)
}

// context returns ctx acting as the session's user.
func (s *session) context(ctx context.Context) context.Context {
	return signedIn(ctx, s.caller, s.token)
}

// pageFunc serves a page for a signed-in user.
type pageFunc func(w http.ResponseWriter, r *http.Request, s *session) error

// page admits a signed-in user. Without a valid access cookie the browser
// is sent through the refresh route (which alone sees the refresh cookie)
// and back; without a session at all, to the login page.
func (a *App) page(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := a.session(r)
		if err != nil {
			if errs.KindOf(err) == errs.Unavailable {
				a.fail(w, r, nil, err)
				return
			}
			next := r.URL.RequestURI()
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				next = backTo(r)
			}
			http.Redirect(w, r, "/auth/refresh?next="+url.QueryEscape(next), http.StatusSeeOther)
			return
		}
		r = r.WithContext(s.context(r.Context()))
		if err := fn(w, r, s); err != nil {
			a.fail(w, r, s, err)
		}
	}
}

// admin admits admins only.
func (a *App) admin(fn pageFunc) pageFunc {
	return func(w http.ResponseWriter, r *http.Request, s *session) error {
		if !s.caller.IsAdmin() {
			return authn.ErrAdminOnly
		}
		return fn(w, r, s)
	}
}

// session reads the access cookie, as the API's verifier does (a revoked
// token is refused), and the account as it is now.
func (a *App) session(r *http.Request) (*session, error) {
	ck, err := r.Cookie(authn.AccessCookie)
	if err != nil || ck.Value == "" {
		return nil, authn.ErrInvalidToken
	}
	claims, err := a.d.Verifier.Verify(r.Context(), ck.Value)
	if err != nil {
		return nil, err
	}
	c, err := a.d.Verifier.CallerOf(r.Context(), claims)
	if err != nil {
		return nil, err
	}
	ctx := signedIn(r.Context(), c, ck.Value)
	u, err := a.accounts.get(ctx, claims.Subject)
	if err != nil {
		if errs.KindOf(err) == errs.NotFound {
			return nil, authn.ErrInvalidToken
		}
		return nil, err
	}
	if u.Disabled {
		return nil, users.ErrAccountDisabled
	}
	// The role as the account stands now (c), which applies a demotion at
	// once, where the remembered account may be a few seconds old.
	u.Role = c.Role
	s := &session{caller: c, user: u, sid: claims.SessionID, token: ck.Value}
	if claims.ExpiresAt != nil {
		s.expires = claims.ExpiresAt.Time
	}
	return s, nil
}

// form guards a form post: it must come from one of reel's own pages (the
// same check as the API's cookie authentication), and its body is parsed
// with a bound.
func (a *App) form(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !authn.SameOrigin(r) {
			a.fail(w, r, nil, authn.ErrCrossSite)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				a.fail(w, r, nil, httpx.ErrBodyTooLarge)
				return
			}
			a.fail(w, r, nil, errs.New(errs.Invalid, "malformed_form", "the form could not be read"))
			return
		}
		next(w, r)
	}
}

// secure tells whether cookies get the Secure flag: the request came over
// TLS, to reel or to a trusted proxy in front of it.
func (a *App) secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if !strings.EqualFold(firstValue(r.Header.Get("X-Forwarded-Proto")), "https") {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	for _, p := range a.cfg.TrustedProxies {
		if p.Contains(peer.Unmap()) {
			return true
		}
	}
	return false
}

func firstValue(h string) string {
	v, _, _ := strings.Cut(h, ",")
	return strings.TrimSpace(v)
}

// setSession puts a token pair in the cookies. The access cookie lives as
// long as its token; the refresh cookie as long as the refresh token, and
// is sent only to /auth/.
func (a *App) setSession(w http.ResponseWriter, r *http.Request, t users.Tokens) {
	sec := a.secure(r)
	http.SetCookie(w, &http.Cookie{Name: authn.AccessCookie, Value: t.AccessToken, Path: "/",
		MaxAge: t.ExpiresIn, HttpOnly: true, Secure: sec, SameSite: http.SameSiteLaxMode})
	http.SetCookie(w, &http.Cookie{Name: RefreshCookie, Value: t.RefreshToken, Path: refreshPath,
		MaxAge: int(a.cfg.RefreshTTL / time.Second), HttpOnly: true, Secure: sec, SameSite: http.SameSiteLaxMode})
}

// clearSession deletes both cookies.
func (a *App) clearSession(w http.ResponseWriter, r *http.Request) {
	sec := a.secure(r)
	http.SetCookie(w, &http.Cookie{Name: authn.AccessCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: sec, SameSite: http.SameSiteLaxMode})
	http.SetCookie(w, &http.Cookie{Name: RefreshCookie, Value: "", Path: refreshPath, MaxAge: -1, HttpOnly: true, Secure: sec, SameSite: http.SameSiteLaxMode})
}

// localPath returns next when it is a path on this site, else "/": the
// login and refresh routes redirect there, and must not be an open
// redirect to another site.
func localPath(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\x00\r\n") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	if strings.HasPrefix(u.Path, refreshPath) {
		return "/" // never back into the refresh or logout routes
	}
	return next
}

// backTo is the page a form was posted from (its Referer, when on this
// site), for sending the browser back after a post it could not finish.
func backTo(r *http.Request) string {
	ref, err := url.Parse(r.Referer())
	if err != nil || ref.Host != r.Host {
		return "/"
	}
	return localPath(ref.RequestURI())
}

// refreshGrace is how long the answer to a refresh is kept for a second
// request with the same (now rotated) token. The users service treats a
// rotated token presented again as stolen and revokes its family; but a
// browser presents it again in ordinary use: two tabs whose access cookie
// expired together, or a page's scripts and its next navigation. Within
// this window they get the pair the first one got (each request that
// holds the old token could have had it anyway); past it, reuse is
// reuse.
const refreshGrace = 10 * time.Second

// refresher rotates refresh tokens once per token: concurrent and
// closely repeated requests with the same token share one rotation.
type refresher struct {
	users Users
	now   func() time.Time
	mu    sync.Mutex
	calls map[[32]byte]*refreshCall
}

type refreshCall struct {
	done chan struct{}
	t    users.Tokens
	err  error
	at   time.Time
}

func newRefresher(u Users, now func() time.Time) *refresher {
	return &refresher{users: u, now: now, calls: map[[32]byte]*refreshCall{}}
}

func (f *refresher) refresh(ctx context.Context, token string) (users.Tokens, error) {
	key := sha256.Sum256([]byte(token))
	now := f.now()
	f.mu.Lock()
	for k, c := range f.calls {
		if !c.at.IsZero() && now.Sub(c.at) > refreshGrace {
			delete(f.calls, k)
		}
	}
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.t, c.err
		case <-ctx.Done():
			return users.Tokens{}, ctx.Err()
		}
	}
	c := &refreshCall{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()

	// Not cut short by this request going away: others may be waiting.
	c.t, c.err = f.users.Refresh(context.WithoutCancel(ctx), token)
	f.mu.Lock()
	c.at = f.now()
	if c.err != nil && errs.KindOf(c.err) != errs.Unauthenticated {
		delete(f.calls, key) // a passing failure: the next request tries again
	}
	f.mu.Unlock()
	close(c.done)
	return c.t, c.err
}
