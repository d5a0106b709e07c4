package loadtest

import (
	"context"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"
)

// result is what the tool keeps of an answer.
type result struct {
	status int
	header http.Header
	body   []byte // only when asked for
}

func (res result) ok() bool { return res.status >= 200 && res.status < 300 }

// request is one request to send.
type request struct {
	shard         int
	route, method string
	path          string   // on the target, or
	url           *url.URL // an absolute URL already checked to be on the target
	token         string
	body          *payload
	header        http.Header
	keep          bool // keep the answer's body
	// mayBeGone: a problem+json 404 (or a page's HTML 404) means the
	// video was deleted by its owner meanwhile, which counts as gone, not
	// as an error. A route the server does not serve answers a plain-text
	// 404 and stays an error.
	mayBeGone bool
	// redirectOK: a 303 See Other anywhere but the login page is this
	// request's right answer (a web form's post, a page sending the
	// browser through the session's refresh), not an error.
	redirectOK bool
}

// send sends one request, reads the whole answer (keeping it when asked),
// and records the sample. It returns errStop, unsent, once the run is over
// or the request count is spent.
func (r *run) send(q request) (result, error) {
	if r.stopped() {
		return result{}, errStop
	}
	if r.cfg.Requests > 0 {
		if n := r.issued.Add(1); n > r.cfg.Requests {
			r.halt("requests")
			return result{}, errStop
		} else if n == r.cfg.Requests {
			// The last request still goes; nothing after it.
			defer r.halt("requests")
		}
	}
	target := q.url
	if target == nil {
		u := *r.base
		u.Path, u.RawPath = r.base.Path+q.path, ""
		target = &u
	}
	ctx, cancel := context.WithTimeout(r.reqCtx, r.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if q.body != nil {
		rd = q.body.open()
	}
	req, err := http.NewRequestWithContext(ctx, q.method, target.String(), rd)
	if err != nil {
		return result{}, err
	}
	for k, v := range q.header {
		req.Header[textproto.CanonicalMIMEHeaderKey(k)] = v
	}
	if q.body != nil {
		req.ContentLength = q.body.size
		req.Header.Set("Content-Type", q.body.ctype)
	}
	req.Header.Set("User-Agent", userAgent)
	if q.token != "" {
		req.Header.Set("Authorization", "Bearer "+q.token)
	}

	start := time.Now()
	resp, err := r.client.Do(req)
	var res result
	var n int64
	if err == nil {
		res.status, res.header = resp.StatusCode, resp.Header
		if q.keep {
			var b []byte
			b, err = io.ReadAll(io.LimitReader(resp.Body, maxJSON))
			res.body, n = b, int64(len(b))
		}
		// Drain what is left so the connection is reused.
		m, err2 := io.Copy(io.Discard, resp.Body)
		n += m
		if err == nil {
			err = err2
		}
		resp.Body.Close()
	}
	lat := time.Since(start)
	s := Sample{Route: q.route, Start: start, Latency: lat, Status: res.status, Bytes: n}
	ctype := res.header.Get("Content-Type")
	s.Gone = q.mayBeGone && res.status == http.StatusNotFound &&
		(strings.HasPrefix(ctype, "application/problem+json") || strings.HasPrefix(ctype, "text/html"))
	s.Redirect = q.redirectOK && res.status == http.StatusSeeOther && !strings.HasPrefix(res.header.Get("Location"), "/login")
	if err != nil {
		// A body cut short is an error even though the status came.
		s.Status, s.Err = 0, err
		s.Canceled = r.reqCtx.Err() != nil
	}
	r.rec.Record(q.shard, s)
	if !s.Canceled {
		r.answered.Add(1)
		if s.failed() {
			r.failed.Add(1)
		}
	}
	if err != nil {
		return result{}, err
	}
	return res, nil
}
