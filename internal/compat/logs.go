package compat

import (
	"context"
	_ "embed"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/logs"
	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/outbox"
)

// LogsOpenAPI describes the logs part of the compatibility surface, an
// OpenAPI 3.1 fragment for the logs module's document.
//
//go:embed openapi_logs.json
var LogsOpenAPI []byte

// LogService is what the logs part needs of the logs service.
type LogService interface {
	Ingest(ctx context.Context, events []outbox.Event) error
	Export(ctx context.Context, f logs.Filter, each func(outbox.Event) error) error
}

// logsPage is the original's page size for logs.
const logsPage = 100

// Logs serves the original logging service's routes.
type Logs struct {
	svc  LogService
	auth auth
	keys *authn.ServiceKeys
}

// NewLogs returns the logs part over svc. verifier checks users' access
// tokens; keys checks the service credentials that POST /api/logs/add
// requires. keys may be nil (no REEL_SERVICE_KEY configured): the route is
// then served but refuses every caller.
func NewLogs(svc LogService, verifier *authn.Verifier, keys *authn.ServiceKeys) *Logs {
	return &Logs{svc: svc, auth: auth{verifier}, keys: keys}
}

// Routes registers the routes.
func (l *Logs) Routes(r httpx.Router) {
	r.Handle("GET /api/logs/all", l.auth.require(msgFetchLogs, l.all))
	r.Handle("GET /api/logs/user/{user_id}", l.auth.require(msgFetchLogs, l.user))
	r.Handle("POST /api/logs/add", handler{fallback: "Failed to add log", fn: l.add})
}

// Messages of the original logging service.
const (
	msgFetchLogs    = "Failed to fetch logs"
	msgLogAdded     = "Log added successfully"
	msgLogInvalid   = "Invalid input: action, description, and service are required."
	msgServiceCreds = "A service credential is required"
)

// logRow is the original's log row.
type logRow struct {
	ID          string    `json:"id"`
	UserID      *string   `json:"user_id"`
	ActionType  string    `json:"action_type"`
	Description string    `json:"description"`
	ServiceName string    `json:"service_name"`
	CreatedAt   time.Time `json:"created_at"`
}

type logsAnswer struct {
	Logs  []logRow `json:"logs"`
	Total int      `json:"total"`
}

func (l *Logs) all(w http.ResponseWriter, r *http.Request, c authn.Caller) error {
	if !c.IsAdmin() {
		return fail(http.StatusForbidden, msgAdminOnly)
	}
	return l.list(w, r, logs.Filter{})
}

func (l *Logs) user(w http.ResponseWriter, r *http.Request, c authn.Caller) error {
	id := r.PathValue("user_id")
	// The original showed anyone's log to anyone; reel shows one's own,
	// and everyone's to admins.
	if id != c.UserID && !c.IsAdmin() {
		return fail(http.StatusForbidden, msgAdminOnly)
	}
	if _, err := uuid.Parse(id); err != nil {
		return failWhy(http.StatusBadRequest, msgFetchLogs, "user_id must be a UUID")
	}
	return l.list(w, r, logs.Filter{UserID: id})
}

// list answers one page of the events matching f, newest first, with the
// total. The logs service pages by cursor and has no count, so both come
// from one pass over the matching events (one streamed query, a page held
// in memory): the page and the total are consistent, at a cost that grows
// with the number of matching events.
func (l *Logs) list(w http.ResponseWriter, r *http.Request, f logs.Filter) error {
	start, err := parseStart(r)
	if err != nil {
		return err
	}
	rows := []logRow{}
	total := 0
	err = l.svc.Export(r.Context(), f, func(e outbox.Event) error {
		if total >= start && len(rows) < logsPage {
			rows = append(rows, toLogRow(e))
		}
		total++
		return nil
	})
	if errors.Is(err, logs.ErrBadUserID) {
		return failWhy(http.StatusBadRequest, msgFetchLogs, "user_id must be a UUID")
	}
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, logsAnswer{Logs: rows, Total: total})
	return nil
}

// Metadata keys under which an event added through POST /api/logs/add
// keeps the original's names, which reel's naming rules would not accept
// as they are.
const (
	metaServiceName = "compat_service_name"
	metaActionType  = "compat_action_type"
)

// toLogRow renders an event as the original's log row.
func toLogRow(e outbox.Event) logRow {
	action := e.Action
	if s, ok := e.Metadata[metaActionType].(string); ok && s != "" {
		action = s
	}
	return logRow{ID: e.ID, UserID: e.UserID, ActionType: action, Description: e.Description, ServiceName: serviceName(e), CreatedAt: e.OccurredAt}
}

// The original's service names.
const (
	svcUserAccount       = "UserAccountService"
	svcVideoUpload       = "VideoUploadService"
	svcVideoFetch        = "VideoFetchService"
	svcVideoStream       = "VideoStreamService"
	svcVideoDelete       = "VideoDeleteService"
	svcStorageManagement = "StorageManagementService"
	svcUsageMonitoring   = "UsageMonitoringService"
)

// serviceName maps reel's service and action onto the original's service
// names: the original split the video service's work over four names by
// what it did.
func serviceName(e outbox.Event) string {
	if s, ok := e.Metadata[metaServiceName].(string); ok && s != "" {
		return s
	}
	switch e.Service {
	case "users":
		return svcUserAccount
	case "storage":
		return svcStorageManagement
	case "usage":
		return svcUsageMonitoring
	case "videos":
		switch e.Action {
		case "UPLOAD_VIDEO", "UPDATE_VIDEO", "QUOTA_EXCEEDED", "LIMIT_EXCEEDED":
			return svcVideoUpload
		case "STREAM_VIDEO":
			return svcVideoStream
		case "DELETE_VIDEO", "DELETE_ALL_VIDEOS", "RESTORE_VIDEO", "PURGE_VIDEO":
			return svcVideoDelete
		default:
			return svcVideoFetch
		}
	}
	// A service the original did not have keeps reel's name.
	return e.Service
}

// reelService maps the original's service names onto reel's, so that
// events added by the original's scripts are found by reel's service
// filter too.
func reelService(name string) string {
	switch name {
	case svcUserAccount:
		return "users"
	case svcVideoUpload, svcVideoFetch, svcVideoStream, svcVideoDelete:
		return "videos"
	case svcStorageManagement:
		return "storage"
	case svcUsageMonitoring:
		return "usage"
	}
	return "external"
}

// reelAction turns an action of the original (e.g. "FETCH_USER_VIDEOS", or
// anything a script sends) into an action name reel accepts: an upper-case
// word of at most 64 characters.
func reelAction(a string) string {
	var b strings.Builder
	underscore := false
	for _, c := range strings.ToUpper(strings.TrimSpace(a)) {
		ok := (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		switch {
		case ok:
			b.WriteRune(c)
			underscore = false
		case !underscore && b.Len() > 0:
			b.WriteByte('_')
			underscore = true
		}
	}
	s := strings.TrimRight(b.String(), "_")
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		s = "X_" + s
	}
	if len(s) > 64 {
		s = strings.TrimRight(s[:64], "_")
	}
	return s
}

func (l *Logs) add(w http.ResponseWriter, r *http.Request) error {
	// Only reel's services and operators holding REEL_SERVICE_KEY may
	// write an event; the original let anyone.
	if l.keys == nil {
		return fail(http.StatusUnauthorized, msgServiceCreds)
	}
	callerService, err := l.keys.Verify(authn.BearerToken(r))
	if err != nil {
		return fail(http.StatusUnauthorized, msgServiceCreds)
	}
	// Decoded loosely, as Express did: a field of another type counts as
	// missing rather than making the body malformed.
	var in map[string]any
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	str := func(k string) string {
		s, _ := in[k].(string)
		return s
	}
	action, desc, service := str("action"), str("description"), str("service")
	if strings.TrimSpace(action) == "" || strings.TrimSpace(desc) == "" || strings.TrimSpace(service) == "" {
		return fail(http.StatusBadRequest, msgLogInvalid)
	}
	var userID string
	switch v := in["user_id"].(type) {
	case nil:
	case string:
		u, err := uuid.Parse(v)
		if v != "" && err != nil {
			return failWhy(http.StatusBadRequest, "Invalid input: user_id must be a UUID.", "user_id must be a UUID or null")
		}
		if v != "" {
			userID = u.String()
		}
	default:
		return failWhy(http.StatusBadRequest, "Invalid input: user_id must be a UUID.", "user_id must be a UUID or null")
	}
	// The original's services wrote "Error: …" descriptions for failures;
	// that is the only outcome their lines carry.
	outcome := outbox.Success
	if strings.HasPrefix(desc, "Error") {
		outcome = outbox.Failure
	}
	ra := reelAction(action)
	e := outbox.NewEvent(r.Context(), reelService(service), ra, outcome, desc).ForUser(userID).
		With(metaServiceName, service).With("added_by", callerService)
	if ra != action {
		e = e.With(metaActionType, action)
	}
	// Ingest is idempotent by event id; the id is new, so this records
	// exactly one event.
	if err := l.svc.Ingest(r.Context(), []outbox.Event{e}); err != nil {
		if errors.Is(err, logs.ErrInvalidEvent) {
			return failWhy(http.StatusBadRequest, "Invalid input", fieldErrors(err))
		}
		return err
	}
	httpx.JSON(w, http.StatusCreated, body{Message: msgLogAdded})
	return nil
}
