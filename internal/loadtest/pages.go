package loadtest

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The web app's session cookies (internal/web): the access token, sent
// with every page, and the refresh token, sent to /auth/ only.
const (
	accessCookie  = "reel_access"
	refreshCookie = "reel_refresh"
)

// webSession is a virtual user's cookies on the web app, kept as a
// browser keeps them.
type webSession struct {
	access, refresh string
	loggedIn        time.Time // the last login through the form
}

// take keeps the session cookies an answer sets and reports whether it
// set a fresh access cookie.
func (w *webSession) take(h http.Header) bool {
	fresh := false
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Value == "" || c.MaxAge < 0 {
			continue
		}
		switch c.Name {
		case accessCookie:
			w.access, fresh = c.Value, true
		case refreshCookie:
			w.refresh = c.Value
		}
	}
	return fresh
}

func cookie(name, value string) http.Header { return http.Header{"Cookie": {name + "=" + value}} }

// sameOrigin is what a browser sends with a form posted from the site's
// own page, which the web app requires of every post.
func (r *run) sameOrigin() http.Header {
	return http.Header{"Origin": {r.base.Scheme + "://" + r.base.Host}, "Sec-Fetch-Site": {"same-origin"}}
}

// webLogin signs u in through the web app's login form: its answer is a
// 303 to the feed that sets the session's cookies.
func (r *run) webLogin(u *vuser) error {
	form := url.Values{"email": {u.email}, "password": {r.password}, "next": {"/"}}
	res, err := r.send(request{shard: u.n, route: RouteWebLogin, method: "POST", path: "/login", body: formBody(form),
		header: r.sameOrigin(), redirectOK: true})
	if err != nil {
		return err
	}
	u.web.loggedIn = time.Now()
	if res.status != http.StatusSeeOther || !u.web.take(res.header) {
		return fmt.Errorf("status %d", res.status)
	}
	return nil
}

// pageAction fetches one of the pages; without a web session (its login
// failed) the action is skipped.
func (r *run) pageAction(u *vuser, a Action) error {
	if u.web.access == "" {
		r.skip(a)
		return nil
	}
	switch a {
	case ActPageFeed:
		res, err := r.page(u, RoutePageFeed, "/", true, false)
		if err == nil && res.status == http.StatusOK {
			u.feed = watchIDs(res.body, u.feed[:0])
		}
		return err
	case ActPageWatch:
		id := u.pick()
		if id == "" {
			r.skip(a)
			return nil
		}
		// As for playback: someone else's video may be gone by now.
		_, err := r.page(u, RoutePageWatch, "/watch/"+url.PathEscape(id), false, !slices.Contains(u.mine, id))
		return err
	default:
		_, err := r.page(u, RoutePageMine, "/mine", false, false)
		return err
	}
}

// page fetches a page with the session's access cookie, as a browser
// navigates. A page whose access cookie has expired answers 303 to the
// web's refresh route: the user follows it, which rotates the session's
// cookies, and asks again, once.
func (r *run) page(u *vuser, route, path string, keep, mayBeGone bool) (result, error) {
	for attempt := 0; ; attempt++ {
		res, err := r.send(request{shard: u.n, route: route, method: "GET", path: path, header: cookie(accessCookie, u.web.access),
			keep: keep, mayBeGone: mayBeGone, redirectOK: attempt == 0})
		if err != nil || res.status != http.StatusSeeOther || attempt > 0 {
			return res, err
		}
		if err := r.webRefresh(u, path); err != nil {
			return res, err
		}
	}
}

// webRefresh follows a page's redirect through the refresh route with the
// refresh cookie. A session that cannot be refreshed (the route sends the
// browser to the login page) logs in on the form again, at most once a
// minute, so that a server refusing every session does not turn the run
// into a login storm.
func (r *run) webRefresh(u *vuser, next string) error {
	target := *r.base
	target.Path, target.RawPath = r.base.Path+"/auth/refresh", ""
	target.RawQuery = url.Values{"next": {next}}.Encode()
	res, err := r.send(request{shard: u.n, route: RouteWebRefresh, method: "GET", url: &target,
		header: cookie(refreshCookie, u.web.refresh), redirectOK: true})
	if err != nil {
		return err
	}
	if res.status == http.StatusSeeOther && !strings.HasPrefix(res.header.Get("Location"), "/login") && u.web.take(res.header) {
		return nil
	}
	if time.Since(u.web.loggedIn) > time.Minute {
		return r.webLogin(u)
	}
	return fmt.Errorf("web refresh: status %d", res.status)
}

var watchLink = regexp.MustCompile(`href="/watch/([^"/?#]+)"`)

// watchIDs appends the ids of the videos a feed page links to to dst.
func watchIDs(page []byte, dst []string) []string {
	for _, m := range watchLink.FindAllSubmatch(page, -1) {
		if id := string(m[1]); !slices.Contains(dst, id) {
			dst = append(dst, id)
		}
	}
	return dst
}
