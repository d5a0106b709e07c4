// Package outbox makes activity events as durable as the actions they
// describe. A service writes each event into its own outbox table in the
// same transaction as the action; a relay delivers batches to the logs
// service and deletes them only once acknowledged. If the logs service is
// down, events wait; nothing is dropped.
package outbox

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/obs"
)

// Outcomes of an event.
const (
	Success = "success"
	Failure = "failure"
	Denied  = "denied"
)

// Event is one activity event, as stored by the logs service and shown
// to admins.
type Event struct {
	ID          string         `json:"id"`
	OccurredAt  time.Time      `json:"occurred_at"`
	UserID      *string        `json:"user_id"`
	Action      string         `json:"action"`
	Service     string         `json:"service"`
	Outcome     string         `json:"outcome"`
	Description string         `json:"description"`
	TargetID    *string        `json:"target_id"`
	RequestID   string         `json:"request_id"`
	IP          string         `json:"ip"`
	UserAgent   string         `json:"user_agent"`
	Metadata    map[string]any `json:"metadata"`
}

// NewEvent makes an event with a fresh time-ordered id, filling the user
// from the authenticated caller and the request id, client address and user
// agent from the request in ctx.
func NewEvent(ctx context.Context, service, action, outcome, description string) Event {
	req := obs.RequestFrom(ctx)
	e := Event{
		ID:          uuid.Must(uuid.NewV7()).String(),
		OccurredAt:  time.Now().UTC(),
		Action:      action,
		Service:     service,
		Outcome:     outcome,
		Description: description,
		RequestID:   req.ID,
		IP:          req.IP,
		UserAgent:   req.UserAgent,
		Metadata:    map[string]any{},
	}
	if c, ok := authn.CallerFrom(ctx); ok && c.UserID != "" {
		e.UserID = &c.UserID
	}
	return e
}

// ForUser sets the event's user (for actions before authentication, such
// as a login).
func (e Event) ForUser(id string) Event {
	if id != "" {
		e.UserID = &id
	}
	return e
}

// On sets the object the event is about.
func (e Event) On(targetID string) Event {
	if targetID != "" {
		e.TargetID = &targetID
	}
	return e
}

// With adds a metadata entry.
func (e Event) With(key string, value any) Event {
	m := make(map[string]any, len(e.Metadata)+1)
	for k, v := range e.Metadata {
		m[k] = v
	}
	m[key] = value
	e.Metadata = m
	return e
}
