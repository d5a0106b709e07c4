package videos

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"

	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
)

// media is GET (and HEAD) /media/{token}/{id}/{file}: the bytes of a video
// or its poster under a signed URL, with the semantics of
// http.ServeContent (single ranges, 206, 416, ETag, Last-Modified,
// conditional requests). Bytes actually written are counted as the
// viewer's egress; a viewer whose daily allowance is used up gets 429.
func (h *Handler) media(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	m, err := h.svc.OpenMedia(ctx, r.PathValue("token"), r.PathValue("id"), r.PathValue("file"))
	if err != nil {
		return err
	}
	defer func() { _ = m.Close() }()
	allowance, err := h.svc.Allowance(ctx, m.Viewer)
	if err != nil {
		return err
	}
	if allowance == 0 || allowance < -1 {
		return h.svc.EgressLimitError()
	}
	budget := int64(-1)
	if allowance > 0 {
		// Whatever the request asks for, the answer stops one chunk past
		// the allowance: a full-file GET or a huge closed range cannot
		// overshoot more than an open-ended one.
		budget = allowance + h.cfg.MediaChunk
	}

	info := m.Info()
	hdr := w.Header()
	hdr.Set("Content-Type", m.ContentType)
	hdr.Set("ETag", `"`+info.ETag+`"`)
	// The URL is private to a viewer; revalidation is cheap (ETag) and
	// makes a trashed video stop playing from caches too.
	hdr.Set("Cache-Control", "private, no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if rng, ok := boundOpenRange(r.Header.Get("Range"), info.Size, h.cfg.MediaChunk); ok {
		r.Header.Set("Range", rng)
	}

	// The object itself goes to ServeContent: a disk object hands its file
	// to sendfile (blob.DiskObject.SyscallConn), and meteredWriter keeps
	// the ResponseWriter's io.ReaderFrom reachable for that.
	mw := &meteredWriter{ResponseWriter: w, r: r, budget: budget}
	http.ServeContent(mw, r, "", info.ModTime, m.Object)
	h.svc.CountEgress(m.Viewer, mw.body)
	return nil
}

// boundOpenRange rewrites a single open-ended range "bytes=N-" that would
// run more than chunk bytes into "bytes=N-(N+chunk-1)". Browsers ask for
// media this way and come back for the next part, so each answer stays
// small and the egress check runs again before the next one.
func boundOpenRange(h string, size, chunk int64) (string, bool) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return h, false
	}
	start, end, ok := strings.Cut(strings.TrimSpace(spec), "-")
	start = strings.TrimSpace(start)
	if !ok || start == "" || strings.TrimSpace(end) != "" {
		return h, false // a closed or suffix range: ServeContent's as asked
	}
	n, err := strconv.ParseInt(start, 10, 64)
	if err != nil || n < 0 || n >= size || size-n <= chunk {
		return h, false
	}
	return "bytes=" + strconv.FormatInt(n, 10) + "-" + strconv.FormatInt(n+chunk-1, 10), true
}

// errBudget stops a response at the viewer's allowance plus one chunk.
var errBudget = errors.New("egress allowance used up")

// meteredWriter counts the body bytes of a media answer, stops them at
// budget (-1: unlimited), and turns ServeContent's plain-text errors (416,
// 412) into problem documents. It forwards ReadFrom so sendfile still
// works.
type meteredWriter struct {
	http.ResponseWriter
	r       *http.Request
	budget  int64
	body    int64 // body bytes written (counted as egress)
	status  int
	problem bool // an error status was answered with a problem document
}

func (m *meteredWriter) WriteHeader(code int) {
	if m.status != 0 {
		return
	}
	m.status = code
	if code < 400 {
		m.ResponseWriter.WriteHeader(code)
		return
	}
	m.problem = true
	p := httpx.Problem{Type: "about:blank", Title: http.StatusText(code), Status: code, Code: "media_error",
		Detail: http.StatusText(code), RequestID: obs.RequestFrom(m.r.Context()).ID}
	switch code {
	case http.StatusRequestedRangeNotSatisfiable:
		p.Code, p.Detail = "range_not_satisfiable", "the requested range does not overlap the file"
	case http.StatusPreconditionFailed:
		p.Code, p.Detail = "precondition_failed", "the file does not match the request's preconditions"
	}
	b, _ := json.Marshal(p)
	hdr := m.Header()
	hdr.Del("ETag")
	hdr.Set("Content-Type", "application/problem+json")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Length", strconv.Itoa(len(b)))
	m.ResponseWriter.WriteHeader(code)
	_, _ = m.ResponseWriter.Write(b)
}

func (m *meteredWriter) room() int64 {
	if m.budget < 0 {
		return -1
	}
	return max(0, m.budget-m.body)
}

func (m *meteredWriter) Write(p []byte) (int, error) {
	if m.status == 0 {
		m.WriteHeader(http.StatusOK)
	}
	if m.problem {
		return len(p), nil // ServeContent's own error text, replaced
	}
	var cut bool
	if room := m.room(); room >= 0 && int64(len(p)) > room {
		p, cut = p[:room], true
	}
	n, err := m.ResponseWriter.Write(p)
	m.body += int64(n)
	if err == nil && cut {
		err = errBudget
	}
	return n, err
}

// ReadFrom is the sendfile path: ServeContent copies with io.CopyN, which
// hands us an *io.LimitedReader over the *os.File. Tightening its N in
// place (rather than wrapping it) keeps the file visible to the kernel
// copy.
func (m *meteredWriter) ReadFrom(src io.Reader) (int64, error) {
	if m.status == 0 {
		m.WriteHeader(http.StatusOK)
	}
	if m.problem {
		return io.Copy(io.Discard, src)
	}
	if room := m.room(); room >= 0 {
		if lr, ok := src.(*io.LimitedReader); ok {
			lr.N = min(lr.N, room)
		} else {
			src = io.LimitReader(src, room)
		}
	}
	var (
		n   int64
		err error
	)
	if rf, ok := m.ResponseWriter.(io.ReaderFrom); ok {
		if sendfileSource(src) {
			// The header goes out first, so that net/http does not read
			// the body's first 512 bytes through user space to send
			// with it (its way of not answering before the source
			// proves readable, which an open file is).
			m.Flush()
		}
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{m.ResponseWriter}, src)
	}
	m.body += n
	if err != nil {
		err = fmt.Errorf("send media: %w", err)
	}
	return n, err
}

// sendfileSource reports whether package net can send src with sendfile:
// a file, or a LimitedReader over one, that gives its descriptor.
func sendfileSource(src io.Reader) bool {
	if lr, ok := src.(*io.LimitedReader); ok {
		src = lr.R
	}
	_, ok := src.(syscall.Conn)
	return ok
}

// Flush implements http.Flusher.
func (m *meteredWriter) Flush() {
	if f, ok := m.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (m *meteredWriter) Unwrap() http.ResponseWriter { return m.ResponseWriter }
