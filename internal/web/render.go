package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/users"
)

//go:embed templates static
var files embed.FS

// csp allows the page's own scripts, styles, images and media only: no
// inline script or style, no plugins, no framing, forms posted here only.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"media-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// headers sets the security headers of every page. Pages carry the
// user's data and signed media URLs: never stored by a cache.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		// same-origin, not no-referrer: with no-referrer a browser sends
		// "Origin: null" on form posts, which the same-origin check needs.
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// view is what every page template gets.
type view struct {
	Title string
	Nav   string      // the navigation entry of the page, marked current
	User  *users.User // nil when signed out
	// Expires is the access token's expiry (Unix seconds): the page's
	// script refreshes the session before it.
	Expires int64
	Script  string // the page's own module under static/js, if any
	Notice  string
	Error   string
	Data    any
}

func (a *App) view(s *session, title, nav string) view {
	v := view{Title: title, Nav: nav}
	if s != nil {
		v.User = &s.user
		v.Expires = s.expires.Unix()
	}
	return v
}

func parsePages(as *assets, now func() time.Time) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"asset": as.url, "bytes": fmtBytes, "limit": fmtLimit, "duration": fmtDuration,
		"when": fmtTime, "iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"until":   func(t time.Time) string { return fmtUntil(t.Sub(now())) },
		"percent": percent,
		"deref": func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		},
		// short is the end of a UUID, enough to tell ids apart on a page:
		// the start of a UUIDv7 is its time, the same for ids made together.
		"short": func(id string) string {
			if len(id) > 8 {
				return "…" + id[len(id)-8:]
			}
			return id
		},
	}
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimPrefix(n, "templates/")
		if name == "layout.html" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(files, n)
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes a page. It renders into a buffer first, so that a
// template failure is a clean error page rather than half a page.
func (a *App) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	t, ok := a.pages[name]
	var buf bytes.Buffer
	if !ok {
		a.renderFailure(w, r, fmt.Errorf("no template %s", name))
		return
	}
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		a.renderFailure(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

func (a *App) renderFailure(w http.ResponseWriter, r *http.Request, err error) {
	obs.Logger(r.Context(), a.log).Error("render page", "err", err)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = fmt.Fprintf(w, "Something went wrong on our side (request %s).\n", obs.RequestFrom(r.Context()).ID)
}

type failure struct {
	Status    int
	Message   string
	RequestID string
}

// fail renders an error page: the error's client-safe message and the
// status its kind maps to (httpx.StatusOf, the one mapping); anything
// unclassified is logged and shown as a generic failure.
func (a *App) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	p, e := httpx.ProblemOf(err)
	id := obs.RequestFrom(r.Context()).ID
	if p.Status >= 500 {
		obs.Logger(r.Context(), a.log).LogAttrs(r.Context(), slog.LevelError, "page failed",
			slog.String("err", err.Error()), slog.Int("status", p.Status), slog.String("request_id", id))
	}
	msg := sentence(e.Msg)
	if e.Kind == errs.Internal {
		msg = "Something went wrong on our side. Please try again."
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	} else if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	v := a.view(s, http.StatusText(p.Status), "")
	v.Data = failure{Status: p.Status, Message: msg, RequestID: id}
	a.render(w, r, p.Status, "error.html", v)
}

// message is an error's client-safe text as a sentence, for a form's
// error banner; unclassified errors are logged and not shown.
func (a *App) message(r *http.Request, err error) (int, string) {
	p, e := httpx.ProblemOf(err)
	if e.Kind == errs.Internal || p.Status >= 500 {
		obs.Logger(r.Context(), a.log).Error("page action failed", "err", err, "status", p.Status,
			"request_id", obs.RequestFrom(r.Context()).ID)
		if e.Kind != errs.Internal {
			return p.Status, sentence(e.Msg)
		}
		return p.Status, "Something went wrong on our side. Please try again."
	}
	return p.Status, sentence(e.Msg)
}

// sentence capitalises a service's message and ends it with a full stop.
func sentence(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// fmtBytes writes a byte count in binary units: "12.3 MiB".
func fmtBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	v := float64(n)
	for _, unit := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= 1024
		if v < 1024 || unit == "TiB" {
			if v >= 100 || v == math.Trunc(v) {
				return fmt.Sprintf("%.0f %s", v, unit)
			}
			return fmt.Sprintf("%.1f %s", v, unit)
		}
	}
	return "" // not reached
}

// fmtLimit is fmtBytes where -1 means no limit.
func fmtLimit(n int64) string {
	if n < 0 {
		return "unlimited"
	}
	return fmtBytes(n)
}

// fmtDuration writes seconds of video as m:ss or h:mm:ss.
func fmtDuration(sec float64) string {
	s := int64(math.Round(sec))
	if s < 0 {
		s = 0
	}
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s%3600/60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// fmtTime writes a time in UTC, the time zone of reel's days.
func fmtTime(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04 UTC") }

// fmtUntil writes a wait in words: "5 h 12 min", "40 s".
func fmtUntil(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%d days", int(math.Round(d.Hours()/24)))
}

// percent is used of limit as a whole percentage for a meter, 0 when
// unlimited.
func percent(used, limit int64) int64 {
	if limit <= 0 {
		if limit == 0 && used > 0 {
			return 100
		}
		return 0
	}
	return min(100, used*100/limit)
}
