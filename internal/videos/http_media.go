package videos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
)

// media is GET (and HEAD) /media/{token}/{id}/{file}: the bytes of a video
// or its poster under a signed URL, with the semantics of
// http.ServeContent (single ranges, 206, 416, ETag, Last-Modified,
// conditional requests). Bytes actually written are counted as the
// viewer's egress; a viewer whose daily allowance is used up gets 429.
func (h *Handler) media(w http.ResponseWriter, r *http.Request) error {
	m, err := h.svc.OpenMedia(r.Context(), r.PathValue("token"), r.PathValue("id"), r.PathValue("file"), h.admitViewer)
	if err != nil {
		return err
	}
	defer func() { _ = m.Close() }()
	budget := int64(-1)
	if m.Allowance > 0 {
		// Whatever the request asks for, the answer stops one chunk past
		// the allowance: a full-file GET or a huge closed range cannot
		// overshoot more than an open-ended one.
		budget = m.Allowance + h.cfg.MediaChunk
	}

	info := m.Info()
	hdr := w.Header()
	hdr.Set("Content-Type", m.ContentType)
	hdr.Set("ETag", `"`+info.ETag+`"`)
	// The URL is private to a viewer; revalidation is cheap (ETag) and
	// makes a trashed video stop playing from caches too. The placeholder
	// of a poster not cut yet is not kept at all: the next load shows the
	// poster.
	if m.Placeholder {
		hdr.Set("Cache-Control", "no-store")
	} else {
		hdr.Set("Cache-Control", "private, no-cache")
	}
	hdr.Set("X-Content-Type-Options", "nosniff")
	mw := &meteredWriter{ResponseWriter: w, r: r, budget: budget, size: info.Size}
	if rh := r.Header.Get("Range"); rh != "" {
		if rng := mediaRange(rh, info.Size, h.cfg.MediaChunk); rng == "" {
			r.Header.Del("Range")
		} else if rng != rh {
			r.Header.Set("Range", rng)
		}
	}

	// The object itself goes to ServeContent: a disk object hands its file
	// to sendfile (blob.DiskObject.SyscallConn), and meteredWriter keeps
	// the ResponseWriter's io.ReaderFrom reachable for that.
	http.ServeContent(mw, r, "", info.ModTime, m.Object)
	m.Delivered(mw.body)
	return nil
}

// admitViewer is the media URL's viewer checked as a token's holder is
// (authn.Verifier.Admit).
func (h *Handler) admitViewer(ctx context.Context, viewer string, issued time.Time) error {
	_, err := h.auth.Admit(ctx, viewer, issued)
	return err
}

// mediaRange reads a Range header before http.ServeContent does, for
// what ServeContent gets wrong or cannot know:
//   - a range unit other than bytes is ignored (RFC 9110 §14.2), so the
//     answer is the whole file ("" is returned) rather than a 416; the
//     unit is matched without regard to case;
//   - a zero-length suffix ("-0") selects nothing and is dropped (ServeContent
//     answers it with a 206 whose Content-Range is "bytes size-(size-1)");
//     if nothing is left, the range becomes "size-", which ServeContent
//     answers with 416 once the conditional headers (If-Range, If-None-Match)
//     have had their say;
//   - a lone open-ended range "N-" that would run more than chunk bytes
//     becomes "N-(N+chunk-1)". Browsers ask for media this way and come
//     back for the next part, so each answer stays small and the egress
//     check runs again before the next one;
//   - more than maxRanges ranges are ignored, and the answer is the whole
//     file, as nginx does past its max_ranges and Apache past MaxRanges
//     (RFC 9110 §14.2 lets a server ignore Range): ServeContent has no cap,
//     and thousands of tiny ranges make a multipart answer many times
//     larger, and costlier to build, than the bytes asked for. The whole
//     file costs no more than a plain GET, and stays within the viewer's
//     egress budget.
//
// Everything else goes to ServeContent as asked, which rejects a malformed
// range with 416 (which RFC 9110 allows).
func mediaRange(h string, size, chunk int64) string {
	unit, set, found := strings.Cut(strings.TrimSpace(h), "=")
	if !found || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return ""
	}
	if !strings.Contains(set, ",") { // the usual case, without allocating
		spec := strings.TrimSpace(set)
		switch n, ok := openStart(spec); {
		case emptySuffix(spec):
			return noOverlap(size)
		case ok && n < size && size-n > chunk:
			return "bytes=" + strconv.FormatInt(n, 10) + "-" + strconv.FormatInt(n+chunk-1, 10)
		case strings.HasPrefix(h, "bytes="):
			return h
		}
		return "bytes=" + spec
	}
	if strings.Count(set, ",") >= maxRanges {
		return "" // more than maxRanges specs (empty ones count too)
	}
	specs := strings.Split(set, ",")
	kept := specs[:0]
	for _, s := range specs {
		if s = strings.TrimSpace(s); !emptySuffix(s) {
			kept = append(kept, s)
		}
	}
	switch len(kept) {
	case 0:
		return noOverlap(size)
	case 1:
		return mediaRange("bytes="+kept[0], size, chunk)
	}
	return "bytes=" + strings.Join(kept, ",")
}

// maxRanges is the most ranges one request may ask for (issue 20); a
// request with more gets the whole file.
const maxRanges = 16

// noOverlap is a range ServeContent answers with 416.
func noOverlap(size int64) string { return "bytes=" + strconv.FormatInt(size, 10) + "-" }

// emptySuffix reports whether a range spec is a suffix of length 0 ("-0").
func emptySuffix(spec string) bool {
	first, last, _ := strings.Cut(spec, "-")
	if strings.TrimSpace(first) != "" {
		return false
	}
	n, err := strconv.ParseUint(strings.TrimSpace(last), 10, 64)
	return err == nil && n == 0
}

// openStart is N for an open-ended range spec "N-".
func openStart(spec string) (int64, bool) {
	first, last, ok := strings.Cut(spec, "-")
	first = strings.TrimSpace(first)
	if !ok || first == "" || strings.TrimSpace(last) != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil && n >= 0
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
	size    int64 // of the file, for the Content-Range of a 416
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
		p.Code, p.Detail = "range_not_satisfiable", "the requested range is malformed or does not overlap the file"
		// ServeContent omits it for a malformed range; RFC 9110 §15.5.17
		// asks for it on every 416.
		if m.Header().Get("Content-Range") == "" {
			m.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(m.size, 10))
		}
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

// writerOnly hides a writer's ReadFrom so io.Copy uses the plain Write
// path.
type writerOnly struct{ w io.Writer }

func (w writerOnly) Write(p []byte) (int, error) { return w.w.Write(p) }
