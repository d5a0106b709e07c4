package logs

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/page"
)

// Page sizes of the log lists (API.md: default 100, at most 1000).
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// MaxIngestBody bounds the body of the internal ingest route: a full batch
// of events with large metadata fits, anything bigger is refused (413) and
// the relay splits its batch.
const MaxIngestBody = 8 << 20

// Handler serves the logs service's routes.
type Handler struct {
	svc  *Service
	auth *authn.Verifier
}

// NewHandler returns the HTTP handler of svc.
func NewHandler(svc *Service, auth *authn.Verifier) *Handler {
	return &Handler{svc: svc, auth: auth}
}

// Routes registers the public routes. None of them writes an event.
func (h *Handler) Routes(r httpx.Router) {
	r.Handle("GET /api/v1/logs", h.auth.RequireAdmin(httpx.HandlerFunc(h.list)))
	r.Handle("GET /api/v1/logs/me", h.auth.Require(httpx.HandlerFunc(h.mine)))
	r.Handle("GET /api/v1/logs/export", h.auth.RequireAdmin(httpx.HandlerFunc(h.export)))
}

// InternalRoutes registers the route through which other processes'
// outbox relays deliver events; only callers holding a service credential
// signed with keys get in.
func (h *Handler) InternalRoutes(r httpx.Router, keys *authn.ServiceKeys) {
	r.Handle("POST /internal/v1/logs/events", keys.RequireService(httpx.HandlerFunc(h.ingest)))
}

// parseFilter reads the filter query values. own is true for the caller's
// own events, where user_id is not a filter but the caller.
func parseFilter(q url.Values, own bool) (Filter, error) {
	f := Filter{
		UserID:  q.Get("user_id"),
		Action:  q.Get("action"),
		Service: q.Get("service"),
		Outcome: q.Get("outcome"),
		Q:       q.Get("q"),
	}
	if own && q.Has("user_id") {
		return Filter{}, httpx.ErrInvalidQuery.WithMsg("user_id is not a filter of your own events")
	}
	var err error
	if f.Since, err = parseTime(q.Get("since")); err != nil {
		return Filter{}, ErrBadTime.WithMsg("since must be an RFC 3339 timestamp such as 2024-05-01T00:00:00Z")
	}
	if f.Until, err = parseTime(q.Get("until")); err != nil {
		return Filter{}, ErrBadTime.WithMsg("until must be an RFC 3339 timestamp such as 2024-05-01T00:00:00Z")
	}
	return f, f.Validate()
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	if t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, errors.New("year out of range")
	}
	return t, nil
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) error {
	return h.search(w, r, false)
}

func (h *Handler) mine(w http.ResponseWriter, r *http.Request) error {
	return h.search(w, r, true)
}

func (h *Handler) search(w http.ResponseWriter, r *http.Request, own bool) error {
	q := r.URL.Query()
	f, err := parseFilter(q, own)
	if err != nil {
		return err
	}
	if own {
		c, _ := authn.CallerFrom(r.Context())
		f.UserID = c.UserID
	}
	req, err := page.Parse(q.Get("cursor"), q.Get("limit"), DefaultLimit, MaxLimit)
	if err != nil {
		return err
	}
	p, err := h.svc.Search(r.Context(), f, req)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, p)
	return nil
}

// exportFlushEvery is how many events an export writes between flushes:
// often enough that the client sees steady progress, rarely enough that
// the flushes cost nothing.
const exportFlushEvery = 500

// exportWriteTimeout is how long a client may take to accept one flush;
// a stalled client is cut off rather than holding a database connection.
const exportWriteTimeout = time.Minute

// csvHeader is the CSV export's first line: the event fields, in the order
// of API.md.
var csvHeader = []string{"id", "occurred_at", "user_id", "action", "service", "outcome", "description", "target_id", "request_id", "ip", "user_agent", "metadata"}

func (h *Handler) export(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = "ndjson"
	}
	if format != "ndjson" && format != "csv" {
		return ErrBadFormat
	}
	f, err := parseFilter(q, false)
	if err != nil {
		return err
	}

	rc := http.NewResponseController(w)
	// The server has no write timeout (media needs none), so a deadline set
	// below would outlive this response on a kept-alive connection.
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	buf := bufio.NewWriterSize(w, 32<<10)
	var (
		started bool
		n       int
		enc     *json.Encoder
		cw      *csv.Writer
	)
	// begin writes the headers on the first event (or at the end), so that
	// a failing query can still be answered with a problem document.
	begin := func() error {
		if started {
			return nil
		}
		started = true
		name := "reel-activity-" + time.Now().UTC().Format("20060102T150405Z") + "." + format
		hd := w.Header()
		if format == "csv" {
			hd.Set("Content-Type", "text/csv; charset=utf-8")
		} else {
			hd.Set("Content-Type", "application/x-ndjson")
		}
		hd.Set("Content-Disposition", `attachment; filename="`+name+`"`)
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		if format == "csv" {
			cw = csv.NewWriter(buf)
			return cw.Write(csvHeader)
		}
		enc = json.NewEncoder(buf)
		return nil
	}
	flush := func() error {
		if cw != nil {
			cw.Flush()
			if err := cw.Error(); err != nil {
				return err
			}
		}
		if err := buf.Flush(); err != nil {
			return err
		}
		// Either call may be unsupported by a test recorder; a real
		// server supports both.
		_ = rc.SetWriteDeadline(time.Now().Add(exportWriteTimeout))
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		return nil
	}
	err = h.svc.Export(r.Context(), f, func(e outbox.Event) error {
		if err := begin(); err != nil {
			return err
		}
		if format == "csv" {
			if err := cw.Write(csvRecord(e)); err != nil {
				return err
			}
		} else if err := enc.Encode(e); err != nil {
			return err
		}
		n++
		if n%exportFlushEvery == 0 {
			return flush()
		}
		return nil
	})
	if err == nil {
		if err = begin(); err == nil {
			err = flush()
		}
	}
	if err != nil {
		if !started {
			return err
		}
		// The status line is gone; cutting the connection is the only
		// way to tell the client the file is incomplete.
		if r.Context().Err() == nil {
			obs.Logger(r.Context(), slog.Default()).Error("export aborted", "events_written", n, "err", err)
		}
		panic(http.ErrAbortHandler)
	}
	return nil
}

// csvRecord renders an event as a CSV record in csvHeader's order.
func csvRecord(e outbox.Event) []string {
	meta, err := json.Marshal(e.Metadata)
	if err != nil {
		meta = []byte("{}")
	}
	deref := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	rec := []string{e.ID, e.OccurredAt.UTC().Format(time.RFC3339Nano), deref(e.UserID), e.Action, e.Service, e.Outcome,
		e.Description, deref(e.TargetID), e.RequestID, e.IP, e.UserAgent, string(meta)}
	for i, v := range rec {
		rec[i] = defuse(v)
	}
	return rec
}

// defuse keeps a spreadsheet from running a cell as a formula (CSV
// injection): descriptions, user agents and request ids come from users,
// and admins open exports in spreadsheets. A cell that would start a
// formula gets a leading apostrophe, as OWASP recommends.
func defuse(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// Batch is the body of the internal ingest route.
type Batch struct {
	Events []outbox.Event `json:"events"`
}

func (h *Handler) ingest(w http.ResponseWriter, r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return httpx.ErrContentType
	}
	var b Batch
	// Unlike public routes, unknown fields are ignored: during a rolling
	// upgrade a newer producer may send fields this version does not know.
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxIngestBody))
	if err := dec.Decode(&b); err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return httpx.ErrBodyTooLarge.WithMsg(fmt.Sprintf("the request body must not exceed %d bytes", maxErr.Limit))
		}
		return httpx.ErrMalformedJSON
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return httpx.ErrMalformedJSON.WithMsg("the request body must hold a single JSON value")
	}
	if err := h.svc.Ingest(r.Context(), b.Events); err != nil {
		return err
	}
	httpx.NoContent(w)
	return nil
}
