package web

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/reel-video/reel/internal/config"
	"github.com/reel-video/reel/internal/logs"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/storage"
	"github.com/reel-video/reel/internal/usage"
	"github.com/reel-video/reel/internal/users"
)

// adminPageSize is how many users or events an admin page lists.
const adminPageSize = 50

type usersData struct {
	Q     string
	Users []users.User
	Next  string
}

// adminUsers lists and searches the accounts.
func (a *App) adminUsers(w http.ResponseWriter, r *http.Request, s *session) error {
	req, err := page.Parse(r.URL.Query().Get("cursor"), "", adminPageSize, adminPageSize)
	if err != nil {
		return err
	}
	q := r.URL.Query().Get("q")
	p, err := a.d.Users.Search(r.Context(), q, req)
	if err != nil {
		return err
	}
	v := a.view(s, "Users", "admin")
	v.Notice = notice(r)
	v.Data = usersData{Q: q, Users: p.Items, Next: nextURL(r, p.NextCursor)}
	a.render(w, r, http.StatusOK, "admin_users.html", v)
	return nil
}

// limitsForm is an account's quota and daily limits as the form shows
// them: sizes such as "50MiB", or "unlimited".
type limitsForm struct {
	Quota, Upload, Egress string
}

type userData struct {
	Account users.User
	Storage storage.Usage
	Today   usage.Status
	Limits  limitsForm
	Fields  map[string]string
	Self    bool
}

func (a *App) adminUser(w http.ResponseWriter, r *http.Request, s *session) error {
	return a.renderUser(w, r, s, http.StatusOK, nil, nil)
}

func (a *App) renderUser(w http.ResponseWriter, r *http.Request, s *session, status int, formErr error, form *limitsForm) error {
	ctx := r.Context()
	u, err := a.d.Users.Get(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	st, today, err := a.figures(ctx, u.ID)
	if err != nil {
		return err
	}
	d := userData{Account: u, Storage: st, Today: today, Self: u.ID == s.user.ID,
		Limits: limitsForm{Quota: sizeText(st.QuotaBytes), Upload: sizeText(today.Upload.LimitBytes), Egress: sizeText(today.Egress.LimitBytes)}}
	v := a.view(s, u.Email, "admin")
	v.Notice = notice(r)
	if formErr != nil {
		_, v.Error = a.message(r, formErr)
		if e, ok := errs.As(formErr); ok {
			d.Fields = e.Fields
		}
		if form != nil {
			d.Limits = *form
		}
	}
	v.Data = d
	a.render(w, r, status, "admin_user.html", v)
	return nil
}

func sizeText(n int64) string {
	if n < 0 {
		return "unlimited"
	}
	return config.FormatSize(n)
}

// parseLimit reads a size field: "unlimited", -1, or a size such as
// "50MiB" or "1073741824".
func parseLimit(field, v string) (int64, error) {
	v = strings.TrimSpace(v)
	if strings.EqualFold(v, "unlimited") {
		return -1, nil
	}
	n, err := config.ParseSize(v)
	if err != nil {
		return 0, users.ErrValidation.WithFields(map[string]string{field: "must be a size such as 50MiB or 2GiB, or unlimited"})
	}
	return n, nil
}

// adminUpdate saves an account's role, state and limits. Only what
// differs from the current values is sent, so that a limit left as it was
// keeps following the default rather than becoming an override.
func (a *App) adminUpdate(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	id := r.PathValue("id")
	u, err := a.d.Users.Get(ctx, id)
	if err != nil {
		return err
	}
	st, today, err := a.figures(ctx, id)
	if err != nil {
		return err
	}
	form := limitsForm{Quota: r.PostFormValue("quota"), Upload: r.PostFormValue("daily_upload"), Egress: r.PostFormValue("daily_egress")}
	var in users.AdminUpdate
	if role := r.PostFormValue("role"); role != u.Role {
		in.Role = &role
	}
	if disabled := r.PostFormValue("disabled") == "on"; disabled != u.Disabled {
		in.Disabled = &disabled
	}
	for _, f := range []struct {
		field, value string
		current      int64
		dst          **int64
	}{
		{"quota", form.Quota, st.QuotaBytes, &in.Limits.StorageQuota},
		{"daily_upload", form.Upload, today.Upload.LimitBytes, &in.Limits.DailyUpload},
		{"daily_egress", form.Egress, today.Egress.LimitBytes, &in.Limits.DailyEgress},
	} {
		n, err := parseLimit(f.field, f.value)
		if err != nil {
			return a.renderUser(w, r, s, http.StatusUnprocessableEntity, err, &form)
		}
		if n != f.current {
			*f.dst = &n
		}
	}
	if _, err := a.d.Users.Update(ctx, id, in); err != nil {
		status, _ := a.message(r, err)
		return a.renderUser(w, r, s, status, err, &form)
	}
	a.accounts.forget(id)
	http.Redirect(w, r, "/admin/users/"+url.PathEscape(id)+"?done=saved", http.StatusSeeOther)
	return nil
}

// Filter choices of the log page: the actions and services reel records.
var (
	logActions = []string{"REGISTER", "LOGIN", "LOGOUT", "TOKEN_REFRESH", "UPLOAD_VIDEO", "UPDATE_VIDEO",
		"DELETE_VIDEO", "DELETE_ALL_VIDEOS", "RESTORE_VIDEO", "PURGE_VIDEO", "STREAM_VIDEO", "FETCH_VIDEOS",
		"CHECK_STORAGE", "CHECK_BANDWIDTH", "QUOTA_EXCEEDED", "LIMIT_EXCEEDED", "UPDATE_USER"}
	logServices = []string{"users", "videos", "storage", "usage", "logs"}
	logOutcomes = []string{outbox.Success, outbox.Failure, outbox.Denied}
)

// logForm is the log page's filter form, as typed.
type logForm struct {
	UserID, Action, Service, Outcome, Since, Until, Q string
}

type logData struct {
	Form                       logForm
	Actions, Services, Outcome []string
	Events                     []outbox.Event
	Next                       string
	ExportNDJSON, ExportCSV    string
}

// datetimeLocal is the value format of <input type="datetime-local">,
// read as UTC, the time zone of reel's days.
const datetimeLocal = "2006-01-02T15:04"

// adminLog searches the activity log with the log API's filters, and
// links to its export with the same filters.
func (a *App) adminLog(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	form := logForm{UserID: strings.TrimSpace(q.Get("user_id")), Action: q.Get("action"), Service: q.Get("service"),
		Outcome: q.Get("outcome"), Since: q.Get("since"), Until: q.Get("until"), Q: q.Get("q")}
	f := logs.Filter{UserID: form.UserID, Action: form.Action, Service: form.Service, Outcome: form.Outcome, Q: form.Q}
	export := url.Values{}
	for k, v := range map[string]string{"user_id": form.UserID, "action": form.Action, "service": form.Service, "outcome": form.Outcome, "q": form.Q} {
		if v != "" {
			export.Set(k, v)
		}
	}
	for _, t := range []struct {
		name, value string
		dst         *time.Time
	}{{"since", form.Since, &f.Since}, {"until", form.Until, &f.Until}} {
		if t.value == "" {
			continue
		}
		at, err := time.Parse(datetimeLocal, t.value)
		if err != nil {
			return errs.New(errs.Invalid, "invalid_time", t.name+" must be a date and time")
		}
		*t.dst = at.UTC()
		export.Set(t.name, at.UTC().Format(time.RFC3339))
	}
	req, err := page.Parse(q.Get("cursor"), "", adminPageSize, adminPageSize)
	if err != nil {
		return err
	}
	p, err := a.d.Logs.Search(r.Context(), f, req)
	if err != nil {
		return err
	}
	d := logData{Form: form, Actions: logActions, Services: logServices, Outcome: logOutcomes, Events: p.Items, Next: nextURL(r, p.NextCursor)}
	export.Set("format", "ndjson")
	d.ExportNDJSON = "/api/v1/logs/export?" + export.Encode()
	export.Set("format", "csv")
	d.ExportCSV = "/api/v1/logs/export?" + export.Encode()
	v := a.view(s, "Activity log", "log")
	v.Data = d
	a.render(w, r, http.StatusOK, "admin_log.html", v)
	return nil
}
