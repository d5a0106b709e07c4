package loadtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// mediaRange is the size of one range request, about what a browser's
// first request for a video asks for.
const mediaRange = 64 << 10

// signUp registers u and logs it in.
func (r *run) signUp(u *vuser) bool {
	body := map[string]string{"email": u.email, "password": r.password, "username": fmt.Sprintf("loadtest user %d", u.n)}
	res, err := r.send(request{shard: u.n, route: RouteRegister, method: "POST", path: "/api/v1/auth/register", body: jsonBody(body)})
	// 409: the account exists already (a rerun with the same id), which
	// is as good for what follows.
	if err != nil || (!res.ok() && res.status != http.StatusConflict) {
		return false
	}
	if r.login(u) != nil {
		return false
	}
	// The same person on the web app signs in through its own login
	// form. Without a web session the user still acts on the API; its
	// page actions are skipped.
	if r.pages {
		if err := r.webLogin(u); err != nil && !errors.Is(err, errStop) {
			r.webRefused.Do(func() { r.note("the web app's login failed (%v): page actions are skipped for such users", err) })
		}
	}
	return true
}

func (r *run) login(u *vuser) error {
	tok, err := r.loginAs(u.n, RouteLogin, u.email, r.password)
	if err != nil {
		return err
	}
	u.token, u.loggedIn = tok, time.Now()
	return nil
}

func (r *run) loginAs(shard int, route, email, password string) (string, error) {
	res, err := r.send(request{shard: shard, route: route, method: "POST", path: "/api/v1/auth/login",
		body: jsonBody(map[string]string{"email": email, "password": password}), keep: true})
	if err != nil {
		return "", err
	}
	if !res.ok() {
		return "", fmt.Errorf("login: status %d", res.status)
	}
	var t struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(res.body, &t) != nil || t.AccessToken == "" {
		return "", errors.New("login: no access token in the answer")
	}
	return t.AccessToken, nil
}

func (r *run) adminLogin() {
	tok, err := r.loginAs(-1, RouteAdminLogin, r.cfg.AdminEmail, r.cfg.AdminPassword)
	if err != nil {
		if !errors.Is(err, errStop) {
			r.note("admin login failed (%v): admin_logs requests go without a valid token and fail", err)
		}
		return
	}
	r.adminMu.Lock()
	r.adminToken = tok
	r.adminMu.Unlock()
}

func (r *run) admin() string {
	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	return r.adminToken
}

// act does one action. Only errStop matters to the caller; failures are
// already counted.
func (r *run) act(u *vuser, a Action) error {
	var res result
	var err error
	switch a {
	case ActFeed:
		res, err = r.send(request{shard: u.n, route: RouteFeed, method: "GET", path: "/api/v1/videos", token: u.token, keep: true})
		if err == nil && res.ok() {
			u.feed = readyIDs(res.body, u.feed[:0])
		}
	case ActStorage:
		res, err = r.send(request{shard: u.n, route: RouteStorage, method: "GET", path: "/api/v1/storage/me", token: u.token})
	case ActUsage:
		res, err = r.send(request{shard: u.n, route: RouteUsage, method: "GET", path: "/api/v1/usage/me", token: u.token})
	case ActLogs:
		res, err = r.send(request{shard: u.n, route: RouteLogs, method: "GET", path: "/api/v1/logs/me", token: u.token})
	case ActAdminLogs:
		tok := r.admin()
		if tok == "" {
			r.skip(a)
			return nil
		}
		_, err = r.send(request{shard: u.n, route: RouteAdminLogs, method: "GET", path: "/api/v1/logs", token: tok})
		return err
	case ActUpload:
		res, err = r.upload(u)
	case ActPlay:
		res, err = r.play(u)
	case ActDelete:
		if len(u.mine) == 0 {
			r.skip(a)
			return nil
		}
		id := u.mine[0]
		u.mine = u.mine[1:]
		res, err = r.send(request{shard: u.n, route: RouteDelete, method: "DELETE", path: "/api/v1/videos/" + url.PathEscape(id), token: u.token})
	case ActLogin:
		return r.login(u)
	case ActPageFeed, ActPageWatch, ActPageMine:
		return r.pageAction(u, a)
	}
	// An expired access token: log in again, as a client would, but at
	// most once a minute, so that a server answering 401 to everything
	// does not turn the run into a login storm.
	if err == nil && res.status == http.StatusUnauthorized && time.Since(u.loggedIn) > time.Minute {
		return r.login(u)
	}
	return err
}

func (r *run) upload(u *vuser) (result, error) {
	u.uploads++
	title := fmt.Sprintf("load test %s user %d video %d", r.runID, u.n, u.uploads)
	res, err := r.send(request{shard: u.n, route: RouteUpload, method: "POST", path: "/api/v1/videos", token: u.token,
		body: multipartBody(title, r.cfg.Video), keep: true})
	if err == nil && res.ok() {
		if v := videoFrom(res.body); v.ID != "" {
			u.mine = append(u.mine, v.ID)
		}
	}
	return res, err
}

// play asks for a playback URL of a video from the feed (or an own upload)
// and fetches two ranges of it: the start, as a player does first, then a
// random later range, as a seek does.
func (r *run) play(u *vuser) (result, error) {
	id := u.pick()
	if id == "" {
		r.skip(ActPlay)
		return result{}, nil
	}
	// Someone else's video may be deleted between the feed read and the
	// click; the 404 that follows is the right answer, not an error.
	gone := !slices.Contains(u.mine, id)
	res, err := r.send(request{shard: u.n, route: RoutePlayback, method: "POST", path: "/api/v1/videos/" + url.PathEscape(id) + "/playback",
		token: u.token, keep: true, mayBeGone: gone})
	if err != nil || !res.ok() {
		return res, err
	}
	var pb struct {
		URL string `json:"url"`
	}
	if json.Unmarshal(res.body, &pb) != nil || pb.URL == "" {
		return res, nil
	}
	media, err := r.resolve(pb.URL)
	if err != nil {
		r.rec.Record(u.n, Sample{Route: RouteMedia, Start: time.Now(), Err: err})
		r.answered.Add(1)
		r.failed.Add(1)
		return res, nil
	}
	first, err := r.fetchRange(u.n, media, 0, mediaRange-1, gone)
	if err != nil || first.total <= mediaRange {
		return res, err
	}
	off := u.rng.Int64N(first.total - mediaRange + 1)
	_, err = r.fetchRange(u.n, media, off, off+mediaRange-1, gone)
	return res, err
}

// pick chooses a video to watch: one from the last feed read, or else one
// of the user's own; "" when there is none.
func (u *vuser) pick() string {
	switch {
	case len(u.feed) > 0:
		return u.feed[u.rng.IntN(len(u.feed))]
	case len(u.mine) > 0:
		return u.mine[u.rng.IntN(len(u.mine))]
	}
	return ""
}

type rangeResult struct{ total int64 }

func (r *run) fetchRange(shard int, target *url.URL, from, to int64, mayBeGone bool) (rangeResult, error) {
	res, err := r.send(request{shard: shard, route: RouteMedia, method: "GET", url: target,
		header: http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", from, to)}}, mayBeGone: mayBeGone})
	if err != nil || !res.ok() {
		return rangeResult{}, err
	}
	// "bytes 0-65535/1234567": the total tells where a seek may land.
	var total int64
	if cr := res.header.Get("Content-Range"); cr != "" {
		if i := strings.LastIndexByte(cr, '/'); i >= 0 {
			total, _ = strconv.ParseInt(cr[i+1:], 10, 64)
		}
	}
	return rangeResult{total: total}, nil
}

// resolve turns a URL from the server into an absolute one and refuses it
// unless it stays on the target's scheme and host.
func (r *run) resolve(raw string) (*url.URL, error) {
	ref, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errForeignURL, err)
	}
	u := r.base.ResolveReference(ref)
	if u.Scheme != r.base.Scheme || u.Host != r.base.Host {
		return nil, fmt.Errorf("%w: %s", errForeignURL, u.Redacted())
	}
	return u, nil
}

type videoInfo struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// videoFrom reads a video from `{"video":{…}}` or a bare video object.
func videoFrom(b []byte) videoInfo {
	var wrapped struct {
		Video videoInfo `json:"video"`
	}
	if json.Unmarshal(b, &wrapped) == nil && wrapped.Video.ID != "" {
		return wrapped.Video
	}
	var v videoInfo
	_ = json.Unmarshal(b, &v)
	return v
}

// readyIDs appends the ids of the ready videos of a feed page to dst.
func readyIDs(b []byte, dst []string) []string {
	var page struct {
		Items []videoInfo `json:"items"`
	}
	if json.Unmarshal(b, &page) != nil {
		return dst
	}
	for _, v := range page.Items {
		if v.ID != "" && (v.Status == "ready" || v.Status == "") {
			dst = append(dst, v.ID)
		}
	}
	return dst
}
