package web

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/videos"
)

// Filter choices of the jobs page: River's job states and the videos
// service's job kinds.
var (
	jobStates = []string{"available", "running", "scheduled", "retryable", "pending", "completed", "cancelled", "discarded"}
	jobKinds  = []string{videos.KindPoster, videos.KindTranscode, videos.KindStoryboard, videos.KindMaintenance, videos.KindPurge}
	// jobsActive are the states in which a job can still be cancelled;
	// jobsWaiting those in which retrying it would change nothing.
	jobsActive  = []string{"available", "running", "scheduled", "retryable", "pending"}
	jobsWaiting = []string{"available", "running", "pending"}
)

// jobRow is a job as the page lists it, with the actions it allows.
type jobRow struct {
	videos.Job
	// Retry and Cancel are the forms' actions ("" when not allowed),
	// carrying the list's filters to come back to.
	Retry, Cancel string
	LastError     string
}

type jobsData struct {
	State, Kind   string
	States, Kinds []string
	Jobs          []jobRow
	Next          string
	// Back is this page's filters, where a retry or cancel comes back to.
	Back string
}

// adminJobs lists the videos service's jobs, newest first, by state and
// kind, with retry and cancel buttons (plain forms: no script needed).
func (a *App) adminJobs(w http.ResponseWriter, r *http.Request, s *session) error {
	return a.renderJobs(w, r, s, http.StatusOK, "")
}

func (a *App) renderJobs(w http.ResponseWriter, r *http.Request, s *session, status int, errMsg string) error {
	q := r.URL.Query()
	d := jobsData{State: q.Get("state"), Kind: q.Get("kind"), States: jobStates, Kinds: jobKinds, Back: jobsURL(q.Get("state"), q.Get("kind"), "")}
	req, err := page.Parse(q.Get("cursor"), "", adminPageSize, adminPageSize)
	if err != nil {
		return err
	}
	p, err := a.d.Videos.Jobs(r.Context(), s.caller, videos.JobFilter{State: d.State, Kind: d.Kind}, req)
	if err != nil {
		return err
	}
	filters := strings.TrimPrefix(strings.TrimPrefix(d.Back, "/admin/jobs"), "?")
	action := func(id int64, what string) string {
		u := "/admin/jobs/" + strconv.FormatInt(id, 10) + "/" + what
		if filters != "" {
			u += "?" + filters
		}
		return u
	}
	for _, j := range p.Items {
		row := jobRow{Job: j}
		if !slices.Contains(jobsWaiting, j.State) {
			row.Retry = action(j.ID, "retry")
		}
		if slices.Contains(jobsActive, j.State) {
			row.Cancel = action(j.ID, "cancel")
		}
		if n := len(j.Errors); n > 0 {
			row.LastError = j.Errors[n-1].Error
		}
		d.Jobs = append(d.Jobs, row)
	}
	d.Next = nextURL(r, p.NextCursor)
	v := a.view(s, "Jobs", "jobs")
	v.Notice, v.Error = notice(r), errMsg
	v.Data = d
	a.render(w, r, status, "admin_jobs.html", v)
	return nil
}

// jobsURL is the jobs page with a filter and a notice, as a local path.
func jobsURL(state, kind, done string) string {
	q := url.Values{}
	for k, v := range map[string]string{"state": state, "kind": kind, "done": done} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if len(q) == 0 {
		return "/admin/jobs"
	}
	return "/admin/jobs?" + q.Encode()
}

// jobAction retries or cancels a job, then goes back to the list the
// form was on (its filters ride along in the form's action URL).
func (a *App) jobAction(action string) pageFunc {
	return func(w http.ResponseWriter, r *http.Request, s *session) error {
		var err error
		if action == "retry" {
			_, err = a.d.Videos.RetryJob(r.Context(), s.caller, r.PathValue("id"))
		} else {
			_, err = a.d.Videos.CancelJob(r.Context(), s.caller, r.PathValue("id"))
		}
		if err != nil {
			status, msg := a.message(r, err)
			return a.renderJobs(w, r, s, status, msg)
		}
		q := r.URL.Query()
		http.Redirect(w, r, jobsURL(q.Get("state"), q.Get("kind"), "job-"+action), http.StatusSeeOther)
		return nil
	}
}
