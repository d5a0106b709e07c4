package loadtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"
)

// userAgent names the tool in the server's logs.
const userAgent = "reel-loadtest/1"

// maxJSON bounds the answers the tool decodes.
const maxJSON = 4 << 20

// newClient returns an HTTP/1.1 client with a keep-alive connection per
// user, like as many browsers, that never follows redirects and never uses
// a proxy: the only address it talks to is the target.
func newClient(cfg Config) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          cfg.Users + 16,
		MaxIdleConnsPerHost:   cfg.Users + 16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		DisableCompression:    true,
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: cfg.Insecure},          //nolint:gosec // asked for with -insecure
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1, a connection per user
		WriteBufferSize:       16 << 10,
		ReadBufferSize:        8 << 10,
		ExpectContinueTimeout: 0,
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// result is what the tool keeps of an answer.
type result struct {
	status int
	header http.Header
	body   []byte // only when asked for
}

func (res result) ok() bool { return res.status >= 200 && res.status < 300 }

// payload is a request body that can be sent again: a fixed-size body the
// transport streams, or nil.
type payload struct {
	open  func() io.Reader
	size  int64
	ctype string
}

func jsonBody(v any) *payload {
	b, _ := json.Marshal(v)
	return &payload{open: func() io.Reader { return bytes.NewReader(b) }, size: int64(len(b)), ctype: "application/json"}
}

// formBody is a form as a browser posts it.
func formBody(v url.Values) *payload {
	b := []byte(v.Encode())
	return &payload{open: func() io.Reader { return bytes.NewReader(b) }, size: int64(len(b)), ctype: "application/x-www-form-urlencoded"}
}

// request is one request to send.
type request struct {
	shard         int
	route, method string
	path          string     // on the target, with query (may be nil), or
	query         url.Values //
	url           *url.URL   // an absolute URL already checked to be on the target
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
		u.Path, u.RawPath, u.RawQuery = r.base.Path+q.path, "", q.query.Encode()
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

// multipartBody builds the upload form: the title first (a streaming
// server needs it before the file), then the video part, without copying
// the video.
func multipartBody(title string, video []byte) *payload {
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	_ = mw.WriteField("title", title)
	ph := textproto.MIMEHeader{}
	ph.Set("Content-Disposition", `form-data; name="video"; filename="loadtest.mp4"`)
	ph.Set("Content-Type", "video/mp4")
	_, _ = mw.CreatePart(ph)
	n := head.Len()
	_ = mw.Close()
	all := head.Bytes()
	prefix, suffix := all[:n:n], all[n:]
	return &payload{
		open: func() io.Reader {
			return io.MultiReader(bytes.NewReader(prefix), bytes.NewReader(video), bytes.NewReader(suffix))
		},
		size:  int64(len(prefix) + len(video) + len(suffix)),
		ctype: mw.FormDataContentType(),
	}
}
