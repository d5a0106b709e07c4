package httpx

import (
	"net/http"

	"github.com/reel-video/reel/internal/platform/obs"
)

// Routed serves mux, answering what no route matches (404) and a method a
// route does not take (405, with the mux's Allow header) in problem+json
// like every other error, instead of net/http's plain text.
func Routed(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// No pattern: the mux's own 404, 405 or redirect handler.
		h.ServeHTTP(&fallbackWriter{ResponseWriter: w, r: r}, r)
	})
}

// fallbackWriter turns the mux's plain-text 404 and 405 into problems
// and passes anything else (redirects) through.
type fallbackWriter struct {
	http.ResponseWriter
	r        *http.Request
	replaced bool
}

func (f *fallbackWriter) WriteHeader(code int) {
	var p Problem
	switch code {
	case http.StatusNotFound:
		p = Problem{Code: "not_found", Detail: "no such route"}
	case http.StatusMethodNotAllowed:
		p = Problem{Code: "method_not_allowed", Detail: "the route does not take this method"}
	default:
		f.ResponseWriter.WriteHeader(code)
		return
	}
	f.replaced = true
	p.Type, p.Title, p.Status = "about:blank", http.StatusText(code), code
	p.RequestID = obs.RequestFrom(f.r.Context()).ID
	WriteProblem(f.ResponseWriter, p)
}

func (f *fallbackWriter) Write(b []byte) (int, error) {
	if f.replaced {
		return len(b), nil // the mux's text; the problem went instead
	}
	return f.ResponseWriter.Write(b)
}
