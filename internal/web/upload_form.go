package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/httpx"
)

// uploadRoute is the API's streamed multipart upload.
const uploadRoute = "/api/v1/videos"

// uploadForm takes the upload page's plain form, the way to upload without
// JavaScript: it is the API's multipart upload (the same field names),
// handed to that route in process, so that the body streams to storage as
// it does there, and the page answers with a redirect or a message instead
// of JSON.
func (a *App) uploadForm(w http.ResponseWriter, r *http.Request) {
	if !authn.SameOrigin(r) {
		a.fail(w, r, nil, authn.ErrCrossSite)
		return
	}
	s, err := a.session(r)
	if err != nil {
		// The body is not read: the browser is sent through the refresh
		// and back to the form, and chooses the file again.
		w.Header().Set("Connection", "close")
		http.Redirect(w, r, "/auth/refresh?next="+url.QueryEscape("/upload"), http.StatusSeeOther)
		return
	}
	r = r.WithContext(s.context(r.Context()))
	in := r.Clone(r.Context())
	in.URL.Path, in.URL.RawPath = uploadRoute, ""
	rec := &captured{w: w, header: http.Header{}}
	a.d.API.ServeHTTP(rec, in)
	if rec.status == http.StatusCreated {
		http.Redirect(w, r, "/mine?done=uploaded", http.StatusSeeOther)
		return
	}
	// A refusal: its problem document says why; an unread body must not
	// be waited for.
	var p httpx.Problem
	if json.Unmarshal(rec.body.Bytes(), &p) != nil || p.Status == 0 {
		p = httpx.Problem{Status: http.StatusInternalServerError}
	}
	for _, k := range []string{"Connection", "Retry-After"} {
		if v := rec.header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	msg := sentence(p.Detail)
	if p.Status >= 500 || msg == "" {
		msg = "The upload failed on our side. Please try again."
	}
	for field, why := range p.Errors {
		msg += " " + sentence("the "+field+" "+why)
	}
	st, today, err := a.figures(r.Context(), s.user.ID)
	if err != nil {
		a.fail(w, r, s, err)
		return
	}
	v := a.view(s, "Upload", "upload")
	v.Script = "js/upload.js"
	v.Error = msg
	v.Data = uploadData{MaxSize: a.cfg.MaxUploadSize, Storage: st, Today: today, Form: a.d.API != nil}
	a.render(w, r, p.Status, "upload.html", v)
}

// captured holds the answer of the in-process API route: its status,
// headers and (small) body. The upload route's answers are a few hundred
// bytes; anything past 64 KiB is dropped.
type captured struct {
	w      http.ResponseWriter
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *captured) Header() http.Header { return c.header }

func (c *captured) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *captured) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if c.body.Len() < 64<<10 {
		c.body.Write(b)
	}
	return len(b), nil
}

// Unwrap lets http.ResponseController reach the connection (read
// deadlines while the body streams).
func (c *captured) Unwrap() http.ResponseWriter { return c.w }

// Flush does nothing: the answer is held until the route is done, so that
// a proxy in front of the route (the gateway's) flushing as it copies does
// not send the real response's header early.
func (c *captured) Flush() {}
