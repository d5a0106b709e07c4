// Package logs is the activity log service: it ingests the events that the
// other services' outbox relays deliver (idempotently, by event id), lets
// admins search and export them and users read their own, and forgets them
// after the retention period.
package logs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Limits on what is ingested. Text that only describes (description, user
// agent) is cut to size rather than refused, because a refused event can
// only be parked in its outbox; identifiers and metadata are refused,
// because cutting them would make them lie.
const (
	// MaxBatch is the most events one Ingest call accepts.
	MaxBatch = 1000
	// MaxDescription is the longest description kept, in bytes.
	MaxDescription = 2000
	// MaxUserAgent is the longest user agent kept, in bytes.
	MaxUserAgent = 512
	// MaxMetadata is the largest metadata object, in bytes of JSON.
	MaxMetadata = 16 << 10
	// MaxQ is the longest description search text, in bytes.
	MaxQ = 200

	maxTargetID  = 256
	maxRequestID = 128
	maxIP        = 64
)

// Errors of the logs service.
var (
	ErrBatchTooLarge = errs.New(errs.TooLarge, "batch_too_large", fmt.Sprintf("a batch holds at most %d events", MaxBatch))
	ErrInvalidEvent  = errs.New(errs.Validation, "invalid_event", "an event is not valid")
	ErrBadUserID     = errs.New(errs.Invalid, "invalid_user_id", "user_id must be a UUID")
	ErrBadAction     = errs.New(errs.Invalid, "invalid_action", "action must be an upper-case word such as LOGIN or UPLOAD_VIDEO")
	ErrBadService    = errs.New(errs.Invalid, "invalid_service", "service must be a lower-case service name such as users")
	ErrBadOutcome    = errs.New(errs.Invalid, "invalid_outcome", "outcome must be success, failure or denied")
	ErrBadTime       = errs.New(errs.Invalid, "invalid_time", "since and until must be RFC 3339 timestamps such as 2024-05-01T00:00:00Z")
	ErrBadRange      = errs.New(errs.Invalid, "invalid_time_range", "since must not be after until")
	ErrBadQ          = errs.New(errs.Invalid, "invalid_q", fmt.Sprintf("q must be at most %d bytes of text", MaxQ))
	ErrBadFormat     = errs.New(errs.Invalid, "invalid_format", "format must be ndjson or csv")
)

// validAction reports whether s is an action name: an upper-case word of
// at most 64 characters (^[A-Z][A-Z0-9_]{0,63}$). A loop rather than a
// regular expression: it runs for every ingested event.
func validAction(s string) bool {
	if s == "" || len(s) > 64 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// validService reports whether s is a service name: ^[a-z][a-z0-9_-]{0,63}$.
func validService(s string) bool {
	if s == "" || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// Service implements the logs service's logic.
type Service struct {
	store *Store
	log   *slog.Logger
	now   func() time.Time
}

// New returns the service over db, which must hold the logs migrations.
func New(db *sqldb.DB, log *slog.Logger) *Service {
	return &Service{store: NewStore(db), log: log, now: time.Now}
}

// SetClock replaces the clock, for tests.
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// Ingest stores a batch of events in one transaction. It is idempotent:
// an event whose id is already stored is skipped, so a relay may deliver a
// batch again after a crash. The whole batch is refused if one event is
// invalid; an outbox relay then isolates and parks that event.
func (s *Service) Ingest(ctx context.Context, events []outbox.Event) error {
	if len(events) == 0 {
		return nil
	}
	if len(events) > MaxBatch {
		return ErrBatchTooLarge
	}
	rows := make([]eventRow, 0, len(events))
	seen := make(map[string]bool, len(events))
	for i, e := range events {
		r, err := normalize(e)
		if err != nil {
			return fmt.Errorf("ingest: event %d: %w", i, err)
		}
		if seen[r.ID] {
			continue
		}
		seen[r.ID] = true
		rows = append(rows, r)
	}
	n, err := s.store.insert(ctx, rows, s.now().UnixMicro())
	if err != nil {
		return fmt.Errorf("ingest %d events: %w", len(rows), err)
	}
	if dup := int64(len(events)) - n; dup > 0 {
		// Normal after a relay restart; a steady stream would mean relays
		// deliver twice and should be looked at.
		s.log.Debug("ingest skipped events already stored", "duplicates", dup)
	}
	return nil
}

// eventRow is an event checked and encoded for storage.
type eventRow struct {
	outbox.Event
	metadata string
}

// normalize checks one event and brings it into its stored form.
func normalize(e outbox.Event) (eventRow, error) {
	bad := func(field, msg string) error {
		return ErrInvalidEvent.WithMsg(fmt.Sprintf("event %q: %s %s", clip(e.ID, 64), field, msg)).
			WithFields(map[string]string{field: msg})
	}
	id, err := uuid.Parse(e.ID)
	if err != nil {
		return eventRow{}, bad("id", "must be a UUID")
	}
	e.ID = id.String()
	if e.OccurredAt.IsZero() || e.OccurredAt.Year() < 2000 || e.OccurredAt.Year() > 9999 {
		return eventRow{}, bad("occurred_at", "must be a time between the years 2000 and 9999")
	}
	e.OccurredAt = e.OccurredAt.UTC().Truncate(time.Microsecond)
	if e.UserID != nil {
		u, err := uuid.Parse(*e.UserID)
		if err != nil {
			return eventRow{}, bad("user_id", "must be a UUID or null")
		}
		v := u.String()
		e.UserID = &v
	}
	if !validAction(e.Action) {
		return eventRow{}, bad("action", "must be an upper-case word of at most 64 characters")
	}
	if !validService(e.Service) {
		return eventRow{}, bad("service", "must be a lower-case name of at most 64 characters")
	}
	if !validOutcome(e.Outcome) {
		return eventRow{}, bad("outcome", "must be success, failure or denied")
	}
	if e.TargetID != nil {
		if len(*e.TargetID) > maxTargetID {
			return eventRow{}, bad("target_id", fmt.Sprintf("must be at most %d bytes", maxTargetID))
		}
		v := clean(*e.TargetID)
		e.TargetID = &v
	}
	if len(e.RequestID) > maxRequestID {
		return eventRow{}, bad("request_id", fmt.Sprintf("must be at most %d bytes", maxRequestID))
	}
	if len(e.IP) > maxIP {
		return eventRow{}, bad("ip", fmt.Sprintf("must be at most %d bytes", maxIP))
	}
	e.RequestID, e.IP = clean(e.RequestID), clean(e.IP)
	e.Description = clip(clean(e.Description), MaxDescription)
	e.UserAgent = clip(clean(e.UserAgent), MaxUserAgent)
	if e.Metadata == nil {
		e.Metadata = map[string]any{}
	}
	meta, err := json.Marshal(e.Metadata)
	if err != nil {
		return eventRow{}, bad("metadata", "must be a JSON object")
	}
	if len(meta) > MaxMetadata {
		return eventRow{}, bad("metadata", fmt.Sprintf("must be at most %d bytes of JSON", MaxMetadata))
	}
	return eventRow{Event: e, metadata: string(meta)}, nil
}

func validOutcome(o string) bool {
	return o == outbox.Success || o == outbox.Failure || o == outbox.Denied
}

// clean makes text storable on both engines: valid UTF-8 and no NUL byte,
// which PostgreSQL text cannot hold (the insert would fail for ever).
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "")
}

// clip cuts s to at most n bytes without splitting a character.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Filter selects events. Zero fields do not filter.
type Filter struct {
	UserID  string
	Action  string
	Service string
	Outcome string
	// Since is inclusive, Until exclusive.
	Since, Until time.Time
	// Q is text that the description must contain (case-insensitive for
	// ASCII letters).
	Q string
}

// Validate checks the filter's values and normalises the user id.
func (f *Filter) Validate() error {
	if f.UserID != "" {
		u, err := uuid.Parse(f.UserID)
		if err != nil {
			return ErrBadUserID
		}
		f.UserID = u.String()
	}
	// Unknown but well-formed actions and services are accepted (and match
	// nothing): ingest accepts any well-formed name too, so that a service
	// can add an action without a logs release.
	if f.Action != "" && !validAction(f.Action) {
		return ErrBadAction
	}
	if f.Service != "" && !validService(f.Service) {
		return ErrBadService
	}
	if f.Outcome != "" && !validOutcome(f.Outcome) {
		return ErrBadOutcome
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Since.After(f.Until) {
		return ErrBadRange
	}
	if len(f.Q) > MaxQ || !utf8.ValidString(f.Q) || strings.ContainsRune(f.Q, 0) {
		return ErrBadQ
	}
	return nil
}

// Search returns a page of the events matching f, newest first. The cursor
// is a position in the (occurred_at, id) order, so paging neither repeats
// nor skips events while new ones arrive.
func (s *Service) Search(ctx context.Context, f Filter, req page.Request) (page.Page[outbox.Event], error) {
	if err := f.Validate(); err != nil {
		return page.Page[outbox.Event]{}, err
	}
	items, err := s.store.search(ctx, f, req.After, req.Limit+1)
	if err != nil {
		return page.Page[outbox.Event]{}, fmt.Errorf("search events: %w", err)
	}
	return page.Make(items, req.Limit, func(e outbox.Event) page.Cursor {
		return page.Cursor{T: e.OccurredAt.UnixMicro(), ID: e.ID}
	}), nil
}

// Export calls each for every event matching f, newest first, reading them
// from the database as it goes (never the whole result in memory). It
// stops at the first error each returns. Before the first call, errors are
// those of the query (the caller may still answer with an error status).
func (s *Service) Export(ctx context.Context, f Filter, each func(outbox.Event) error) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if err := s.store.scan(ctx, f, each); err != nil {
		return fmt.Errorf("export events: %w", err)
	}
	return nil
}

// purgeChunk bounds one retention delete, so that no statement holds the
// SQLite writer, or PostgreSQL locks and WAL, for long.
const purgeChunk = 5000

// Purge deletes the events that occurred before before, in chunks, and
// returns how many it deleted.
func (s *Service) Purge(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		n, err := s.store.purge(ctx, before.UnixMicro(), purgeChunk)
		total += n
		if err != nil {
			return total, fmt.Errorf("purge events: %w", err)
		}
		if n < purgeChunk {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("purge events: %w", err)
		}
	}
}

// Retain deletes the events older than retention and logs how many.
func (s *Service) Retain(ctx context.Context, retention time.Duration) error {
	n, err := s.Purge(ctx, s.now().Add(-retention))
	if n > 0 {
		s.log.Info("deleted expired activity events", "count", n, "retention", retention.String())
	}
	return err
}
