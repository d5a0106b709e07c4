package httpx

import (
	"net/http"
	"strings"
)

// CORS allows browser clients served from the given origins to call the
// API with credentials and the Authorization header, and answers their
// preflight requests. Requests from other origins get no CORS headers (the
// browser then refuses the answer), and their preflights get 403. "*" in
// origins allows any origin, without credentials.
func CORS(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	allowed := make(map[string]bool, len(origins))
	any := false
	for _, o := range origins {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		if o == "*" {
			any = true
		}
		allowed[strings.ToLower(o)] = true
	}
	const (
		methods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
		headers = "Authorization, Content-Type, Range, If-Range, If-None-Match, If-Match, X-Request-ID, " +
			"Tus-Resumable, Upload-Length, Upload-Offset, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Checksum, X-HTTP-Method-Override"
		expose = "Location, Retry-After, X-Request-ID, Content-Range, Content-Length, Accept-Ranges, ETag, " +
			"Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm, Upload-Offset, Upload-Length, Upload-Metadata, Upload-Expires, Reel-Video-Id"
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		ok := allowed[strings.ToLower(origin)]
		if !ok && !any {
			if preflight {
				WriteProblem(w, Problem{Type: "about:blank", Title: "Forbidden", Status: http.StatusForbidden, Code: "cors_origin_refused", Detail: "this origin may not call the API"})
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if ok {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
		} else {
			h.Set("Access-Control-Allow-Origin", "*")
		}
		if preflight {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", methods)
			h.Set("Access-Control-Allow-Headers", headers)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", expose)
		next.ServeHTTP(w, r)
	})
}
