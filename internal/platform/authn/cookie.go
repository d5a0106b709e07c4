package authn

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/reel-video/reel/internal/platform/errs"
)

// AccessCookie names the HttpOnly cookie in which the web app keeps a
// page's access token, so that its scripts call the API without ever
// holding the token.
const AccessCookie = "reel_access"

// ErrCrossSite refuses a cookie-authenticated request that changes
// something and does not come from one of reel's own pages: a browser sends
// the cookie along with any site's form posts, so such a request may be
// forged (CSRF).
var ErrCrossSite = errs.New(errs.Forbidden, "cross_site_request",
	"a request authenticated by the session cookie must come from this site's own pages")

// authenticate is Authenticate, plus the web app's access cookie when the
// request has no Authorization header. A bearer token is never sent by a
// browser on its own, so only the cookie needs the same-origin check, and
// only for methods that change something.
func (v *Verifier) authenticate(r *http.Request) (Caller, error) {
	if r.Header.Get("Authorization") != "" {
		return v.Authenticate(r)
	}
	ck, err := r.Cookie(AccessCookie)
	if err != nil || ck.Value == "" {
		return v.Authenticate(r) // no credentials at all: ErrInvalidToken
	}
	if !SafeMethod(r.Method) && !SameOrigin(r) {
		return Caller{}, ErrCrossSite
	}
	c, err := v.Verify(r.Context(), ck.Value)
	if err != nil {
		return Caller{}, err
	}
	return v.caller(r.Context(), c)
}

// SafeMethod reports whether a method only reads (RFC 9110 9.2.1).
func SafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// SameOrigin reports whether a browser says the request comes from a page
// of the site it is sent to: Sec-Fetch-Site when the browser sends it (all
// current ones do), else an Origin equal to the request's own scheme and
// host. A request with neither is not known to be same-origin. The
// X-Forwarded-Host and -Proto headers a proxy in front adds are believed
// here: a cross-site page cannot make a browser send them without a CORS
// preflight, and reel's CORS never allows those headers.
func SameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" {
		return s == "same-origin"
	}
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return false
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := firstValue(r.Header.Get("X-Forwarded-Proto")); p != "" {
		scheme = p
	}
	host := r.Host
	if h := firstValue(r.Header.Get("X-Forwarded-Host")); h != "" {
		host = h
	}
	return strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, host) && u.Path == "" && u.User == nil
}

// firstValue is the first of a comma-separated header's values (a chain
// of proxies appends its own).
func firstValue(h string) string {
	v, _, _ := strings.Cut(h, ",")
	return strings.TrimSpace(v)
}
