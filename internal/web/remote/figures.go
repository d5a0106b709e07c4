package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/reel-video/reel/internal/logs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/storage"
	"github.com/reel-video/reel/internal/usage"
)

// Storage is the storage service for the pages (web.Storage).
type Storage struct{ api *api }

// Usage returns the viewer's stored bytes and quota, or as an admin
// anyone's.
func (s *Storage) Usage(ctx context.Context, userID string) (storage.Usage, error) {
	path := "/api/v1/storage/users/" + url.PathEscape(userID)
	if self(ctx, userID) {
		path = "/api/v1/storage/me"
	}
	var out storage.Usage
	err := s.api.call(ctx, http.MethodGet, path, nil, nil, &out)
	return out, err
}

// Usage is the usage service for the pages (web.Usage).
type Usage struct{ api *api }

// Today returns today's counters of the viewer, or as an admin anyone's
// (the last day of the admin route's history, whose default ends today
// by the usage service's clock).
func (u *Usage) Today(ctx context.Context, userID string) (usage.Status, error) {
	if self(ctx, userID) {
		var out usage.Status
		err := u.api.call(ctx, http.MethodGet, "/api/v1/usage/me", nil, nil, &out)
		return out, err
	}
	var h struct {
		Items []usage.Status `json:"items"`
	}
	if err := u.api.call(ctx, http.MethodGet, "/api/v1/usage/users/"+url.PathEscape(userID), nil, nil, &h); err != nil {
		return usage.Status{}, err
	}
	if len(h.Items) == 0 {
		return usage.Status{}, fmt.Errorf("usage: %w", errors.New("no day in the history"))
	}
	return h.Items[len(h.Items)-1], nil
}

// Logs is the activity log for the admin pages (web.Logs).
type Logs struct{ api *api }

// Search lists events with the log API's filters (an admin's).
func (l *Logs) Search(ctx context.Context, f logs.Filter, req page.Request) (page.Page[outbox.Event], error) {
	q := pageQuery(req)
	for k, v := range map[string]string{"user_id": f.UserID, "action": f.Action, "service": f.Service, "outcome": f.Outcome, "q": f.Q} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	var out page.Page[outbox.Event]
	err := l.api.call(ctx, http.MethodGet, "/api/v1/logs", q, nil, &out)
	return out, err
}
